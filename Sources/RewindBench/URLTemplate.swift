import Foundation

/// A URL with a `{stream}` placeholder, e.g. `http://127.0.0.1:8080/v1/streams/{stream}/events`, so one load
/// generator drives Rewind and Nchan alike. Plain HTTP to a literal host only: benchmarks run on loopback.
public struct URLTemplate: Sendable, CustomStringConvertible {
    public let host: String
    public let port: Int
    let target: String

    public init(_ text: String) throws(BenchError) {
        guard text.hasPrefix("http://") else { throw BenchError("\(text): only http:// URLs are supported") }
        let rest = text.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        target = slash == rest.endIndex ? "/" : String(rest[slash...])
        if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let port = Int(authority[authority.index(after: colon)...]), (1...65535).contains(port) else {
                throw BenchError("\(text): invalid port")
            }
            self.port = port
        } else {
            host = String(authority)
            port = 80
        }
        guard !host.isEmpty else { throw BenchError("\(text): no host") }
    }

    /// The request target (path and query) for one stream.
    public func target(stream: String) -> String {
        target.replacingOccurrences(of: "{stream}", with: stream)
    }

    public var description: String { "http://\(host):\(port)\(target)" }
}

extension [URLTemplate] {
    /// The template of the index-th connection: connections take the templates in turn, so that several templates
    /// spread the load over several servers (the nodes of one cluster) evenly.
    func forConnection(_ index: Int) -> URLTemplate { self[index % count] }
}
