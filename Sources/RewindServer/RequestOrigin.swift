import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
public import Logging
import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Where the request being handled came from: the client's address as logged (`client.address`) and whether it
/// arrived over HTTP/2. Set around each request by `RequestOrigin.responder`, read by the log's metadata provider and
/// by `HTTP2ResponseHeadersMiddleware`.
public struct RequestOrigin: Sendable {
    /// The peer's address, or with `--trusted-proxy`, the client a trusted proxy says it forwards for.
    public var clientAddress: String?
    public var isHTTP2: Bool

    @TaskLocal public static var current: RequestOrigin?

    /// Wraps the router's responder so the rest of the request runs with `current` set.
    static func responder(
        _ responder: @escaping HTTPChannelHandler.Responder,
        trustedProxies: [AddressRange]
    ) -> HTTPChannelHandler.Responder {
        { request, writer, channel in
            // An HTTP/2 stream is a child of its connection, itself a child of the listening socket; an HTTP/1.1
            // connection is the listening socket's child directly.
            let isHTTP2 = channel.parent?.parent != nil
            let peer = (channel.remoteAddress ?? channel.parent?.remoteAddress)?.ipAddress
            let origin = RequestOrigin(
                clientAddress: clientAddress(peer: peer, headers: request.headers, trustedProxies: trustedProxies),
                isHTTP2: isHTTP2
            )
            var slot: ResponseWriter? = writer
            try await $current.withValue(origin) {
                try await responder(request, slot.take()!, channel)
            }
        }
    }

    /// The peer, unless it is a trusted proxy: then, walking the hops it lists (`Forwarded` `for=`, else
    /// `X-Forwarded-For`) from the nearest back, the first one that is not itself a trusted proxy. Hops further back
    /// than that were written by the client and are not believed. Without trusted ranges the headers are ignored.
    static func clientAddress(peer: String?, headers: HTTPFields, trustedProxies: [AddressRange]) -> String? {
        guard let peer, let peerBytes = AddressRange.parse(peer), trustedProxies.contains(where: { $0.contains(peerBytes) }) else {
            return peer
        }
        var hops = forwardedFor(headers[values: HTTPField.Name("Forwarded")!])
        if hops.isEmpty {
            let name = HTTPField.Name("X-Forwarded-For")!
            hops = headers[values: name].flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        }
        hops = hops.filter { !$0.isEmpty }.map { String($0.prefix(64)) }
        for hop in hops.reversed() {
            guard let bytes = AddressRange.parse(hop), trustedProxies.contains(where: { $0.contains(bytes) }) else { return hop }
        }
        return hops.first ?? peer
    }

    /// The `for=` values of RFC 7239 `Forwarded` fields, quotes, brackets and ports removed.
    static func forwardedFor(_ fields: [String]) -> [String] {
        var hops: [String] = []
        for element in fields.flatMap({ $0.split(separator: ",") }) {
            for pair in element.split(separator: ";") {
                let parts = pair.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces).lowercased() == "for" else { continue }
                var value = parts[1].trimmingCharacters(in: .whitespaces)
                value = value.trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                if value.hasPrefix("["), let close = value.firstIndex(of: "]") {
                    value = String(value[value.index(after: value.startIndex)..<close])
                } else if value.filter({ $0 == ":" }).count == 1, let colon = value.firstIndex(of: ":") {
                    value = String(value[..<colon])
                }
                hops.append(value)
            }
        }
        return hops
    }
}

extension Logger.MetadataProvider {
    /// `client.address` on every line logged while a request is handled.
    public static let requestOrigin = Logger.MetadataProvider {
        guard let address = RequestOrigin.current?.clientAddress else { return [:] }
        return ["client.address": .string(address)]
    }
}

/// An address range of `--trusted-proxy`: `10.0.0.0/8`, `fd00::/8`, or one address.
public struct AddressRange: Sendable, CustomStringConvertible {
    var network: [UInt8]
    var prefixLength: Int
    public let description: String

    /// Nil for text that is not an IPv4 or IPv6 address with an optional `/prefix` that fits it.
    public init?(_ text: String) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let bytes = Self.parse(parts[0]) else { return nil }
        let length: Int
        if parts.count == 2 {
            guard let value = Int(parts[1]), (0...bytes.count * 8).contains(value) else { return nil }
            length = value
        } else {
            length = bytes.count * 8
        }
        network = bytes
        prefixLength = length
        description = text
    }

    func contains(_ address: [UInt8]) -> Bool {
        guard address.count == network.count else { return false }
        var remaining = prefixLength
        for index in network.indices where remaining > 0 {
            let bits = min(8, remaining)
            let mask = UInt8(truncatingIfNeeded: 0xFF << (8 - bits))
            if address[index] & mask != network[index] & mask { return false }
            remaining -= bits
        }
        return true
    }

    /// The address's bytes: 4 for IPv4 (also for an IPv4-mapped IPv6 address), 16 for IPv6.
    static func parse(_ text: String) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: 16)
        if inet_pton(AF_INET, text, &bytes) == 1 { return Array(bytes[0..<4]) }
        guard inet_pton(AF_INET6, text, &bytes) == 1 else { return nil }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF { return Array(bytes[12...]) }
        return bytes
    }
}

/// Takes out of responses sent over HTTP/2 the header fields that only mean something to one HTTP/1.1 connection
/// (RFC 9113 §8.2.2 forbids them there), such as the `Connection: close` an SSE response sets.
struct HTTP2ResponseHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    static var connectionFields: [HTTPField.Name] {
        [.connection, HTTPField.Name("Keep-Alive")!, HTTPField.Name("Proxy-Connection")!, .transferEncoding, .upgrade]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        if RequestOrigin.current?.isHTTP2 == true {
            for name in Self.connectionFields { response.headers[name] = nil }
        }
        return response
    }
}
