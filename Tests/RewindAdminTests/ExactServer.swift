import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import RewindAdmin
import RewindCore
import RewindServer
import RewindStore
import Testing

/// A server on a given file, driven over loopback HTTP.
struct ExactServer: Sendable {
    let base: String

    func publish(_ stream: String, body: [UInt8], contentType: String) async throws -> Int64 {
        var request = HTTPClientRequest(url: base + "/v1/streams/\(stream)/events")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: contentType)
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 1 << 20)
        struct Published: Decodable { var ids: [Int64] }
        let ids = (try? JSONDecoder().decode(Published.self, from: Data(answer.readableBytesView)))?.ids ?? []
        guard response.status.code == 201, ids.count == 1 else {
            throw ExactFailure("publish answered \(response.status.code): \(String(buffer: answer))")
        }
        return Int64(ids[0])
    }

    func json<T: Decodable>(_ path: String, as type: T.Type) async throws -> T {
        var request = HTTPClientRequest(url: base + path)
        request.headers.add(name: "Accept", value: "application/json")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 64 << 20)
        guard response.status.code == 200 else {
            throw ExactFailure("GET \(path) answered \(response.status.code): \(String(buffer: body).prefix(300))")
        }
        return try JSONDecoder().decode(T.self, from: Data(body.readableBytesView))
    }

    /// A finite SSE response, read to its end and parsed.
    func sse(_ path: String) async throws -> [SSEParser.Message] {
        var stream = try await openSSE(path)
        return try await stream.finish()
    }

    /// An SSE response whose first bytes have arrived: the subscription is in place.
    func openSSE(_ path: String) async throws -> OpenStream {
        var request = HTTPClientRequest(url: base + path)
        request.headers.add(name: "Accept", value: "text/event-stream")
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        guard response.status.code == 200 else { throw ExactFailure("SSE \(path) answered \(response.status.code)") }
        var chunks = response.body.makeAsyncIterator()
        var parser = SSEParser()
        let first = try await chunks.next()
        let messages = first.map { parser.feed($0.readableBytesView) } ?? []
        return OpenStream(chunks: chunks, parser: parser, messages: messages)
    }

    struct OpenStream {
        var chunks: HTTPClientResponse.Body.AsyncIterator
        var parser: SSEParser
        var messages: [SSEParser.Message]

        /// Reads until the server ends the stream (its `limit`, or `live=false` once caught up).
        mutating func finish() async throws -> [SSEParser.Message] {
            // Parsed in one piece: fed chunk by chunk, the parser (built for debugging here) takes seconds over
            // megabytes. Chunked feeding has its own tests (RandomInputTests).
            var raw: [UInt8] = []
            while let chunk = try await chunks.next() { raw += chunk.readableBytesView }
            messages += parser.feed(raw)
            return messages
        }
    }
}

struct ExactFailure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Runs the real server in-process on the database at `path` (created if new) and hands it to `body`.
func withExactServer<T: Sendable>(at path: String, _ body: @escaping @Sendable (ExactServer) async throws -> T) async throws -> T {
    var logger = Logger(label: "rewind-exact-test")
    logger.logLevel = .warning
    let app = try await buildApplication(
        configuration: RewindConfiguration(host: "127.0.0.1", port: 0, store: StoreConfiguration(path: path)),
        logger: logger
    )
    return try await app.test(.live) { client in
        try await body(ExactServer(base: "http://127.0.0.1:\(client.port!)"))
    }
}

/// Runs `body`, throwing if it takes longer than `limit`, so a stream the server never ends fails the test
/// instead of hanging it.
func withTimeLimit(_ limit: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
    try await withThrowingTaskGroup(of: Bool.self) { group in
        group.addTask {
            try await body()
            return true
        }
        group.addTask {
            try await Task.sleep(for: limit)
            return false
        }
        let finished = try await group.next() ?? false
        group.cancelAll()
        if !finished { throw ExactFailure("did not finish within \(limit)") }
    }
}
