import AsyncHTTPClient
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import PostgresNIO
import RewindCore
import RewindPostgres
import RewindServer
import RewindStore
@_exported import RewindTestSupport
import ServiceLifecycle
import Synchronization
import Testing

/// A running Rewind on a loopback port, with a real HTTP client pointed at it.
struct TestServer: Sendable {
    let port: Int
    let client: HTTPClient
    /// The SQLite file (for `.sqlite`; on PostgreSQL a file that is never created).
    let databasePath: String
    let backend: Backend
    /// The database the server runs on, for `.postgres`.
    let postgresURL: String?

    var base: String { "http://127.0.0.1:\(port)" }

    struct Reply: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var body: String
        var json: Any? { try? JSONSerialization.jsonObject(with: Data(body.utf8), options: [.fragmentsAllowed]) }
        var object: [String: Any] { (json as? [String: Any]) ?? [:] }
    }

    func request(
        _ method: NIOHTTP1.HTTPMethod,
        _ path: String,
        headers: [(String, String)] = [],
        body: [UInt8]? = nil
    ) async throws -> Reply {
        var request = HTTPClientRequest(url: base + path)
        request.method = method
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(bytes: body)) }
        let response = try await client.execute(request, timeout: .seconds(60))
        let bytes = try await response.body.collect(upTo: 64 << 20)
        return Reply(status: Int(response.status.code), headers: response.headers, body: String(buffer: bytes))
    }

    /// Publishes and returns the reply; `contentType` and body as given.
    func publish(
        _ stream: String,
        _ body: String,
        contentType: String = "application/json",
        headers: [(String, String)] = [],
        query: String = ""
    ) async throws -> Reply {
        try await request(.POST, "/v1/streams/\(stream)/events\(query)", headers: [("Content-Type", contentType)] + headers, body: Array(body.utf8))
    }

    /// Publishes text events and returns their ids; fails the test on any other status than 201.
    func publishTexts(_ stream: String, _ texts: [String]) async throws -> [Int64] {
        let ndjson = texts.map { text -> String in
            let encoded = try! JSONSerialization.data(withJSONObject: ["data": text], options: [])
            return String(decoding: encoded, as: UTF8.self)
        }.joined(separator: "\n")
        let reply = try await publish(stream, ndjson, contentType: "application/x-ndjson")
        guard reply.status == 201, let ids = reply.object["ids"] as? [Int] else {
            throw TestFailure("publish to \(stream) answered \(reply.status): \(reply.body)")
        }
        return ids.map(Int64.init)
    }

    /// Every event of a stream after a cursor, through the JSON read, as (id, data) pairs.
    func history(_ stream: String, after: Int64 = 0) async throws -> [(id: Int64, data: String)] {
        var cursor = after
        var all: [(Int64, String)] = []
        while true {
            let reply = try await request(.GET, "/v1/streams/\(stream)/events?after=\(cursor)&limit=10000", headers: [("Accept", "application/json")])
            guard reply.status == 200, let events = reply.object["events"] as? [[String: Any]] else {
                throw TestFailure("read answered \(reply.status): \(reply.body)")
            }
            if events.isEmpty { return all }
            for event in events {
                let data = event["data"].map { ($0 as? String) ?? String(describing: $0) } ?? ""
                all.append((Int64(event["id"] as! Int), data))
            }
            cursor = all[all.count - 1].0
        }
    }

    struct Stream: Sendable {
        var status: Int
        var headers: HTTPHeaders
        var messages: [SSEParser.Message]
        var parser: SSEParser
        var raw: [UInt8]
        var ids: [Int64] { messages.compactMap { Int64($0.lastEventID) } }
    }

    /// Opens an SSE stream (a GET, or a request with `body`, as `POST /v1/events` takes) and reads until `stop` says
    /// so or the server ends the stream.
    func sse(
        _ path: String,
        method: NIOHTTP1.HTTPMethod = .GET,
        body: String? = nil,
        headers: [(String, String)] = [],
        timeout: Duration = .seconds(60),
        stop: @escaping @Sendable (Stream) -> Bool = { _ in false }
    ) async throws -> Stream {
        try await withDeadline(timeout, body.map { "\(method) SSE \(path) \($0)" } ?? "SSE \(path)") {
            var request = HTTPClientRequest(url: base + path)
            request.method = method
            request.headers.add(name: "Accept", value: "text/event-stream")
            for (name, value) in headers { request.headers.add(name: name, value: value) }
            if let body { request.body = .bytes(ByteBuffer(string: body)) }
            let response = try await client.execute(request, timeout: .seconds(3600))
            var result = Stream(status: Int(response.status.code), headers: response.headers, messages: [], parser: SSEParser(), raw: [])
            for try await chunk in response.body {
                let bytes = Array(chunk.readableBytesView)
                result.raw += bytes
                result.messages += result.parser.feed(bytes)
                if stop(result) { break }
            }
            return result
        }
    }
}

extension TestServer {
    /// Opens a second log on the server's database, runs it as a service, hands it to `body` and stops it: another
    /// process writing the same SQLite file, or another node on the same PostgreSQL database.
    func withExternalLog<T: Sendable>(_ body: @escaping @Sendable (any EventStore) async throws -> T) async throws -> T {
        var logger = Logger(label: "external")
        logger.logLevel = .warning
        let log: any EventStore
        if let postgresURL {
            log = try await PostgresEventLog.open(configuration: PostgresStoreConfiguration(url: postgresURL, environment: [:]), logger: logger)
        } else {
            log = try EventLog(configuration: StoreConfiguration(path: databasePath), logger: logger)
        }
        return try await whileRunning(log.run) { try await body(log) }
    }
}

/// The backends and the PostgreSQL test cluster, shared with the admin suites (`RewindTestSupport`), under the
/// names every file of these suites uses.
typealias Backend = RewindTestSupport.Backend
typealias PostgresTestCluster = RewindTestSupport.PostgresTestCluster
typealias TestFailure = RewindTestSupport.TestFailure

@Suite("PostgreSQL cases of the server suites")
struct PostgresCasesOfTheServerSuites {
    @Test(.needsPostgres("the server suites ran on SQLite only"))
    func theServerSuitesRanOnPostgreSQLToo() {
        #expect(Backend.all.contains(.postgres))
    }
}

/// Runs `body`, failing if it takes longer than `limit`, so a broken stream fails a test instead of hanging it.
func withDeadline<T: Sendable>(_ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        guard let first = try await group.next(), let value = first else {
            group.cancelAll()
            throw TestFailure("\(what) did not finish within \(limit)")
        }
        group.cancelAll()
        return value
    }
}

/// Starts Rewind on a fresh SQLite database in a temporary directory and runs `body` against it over loopback HTTP.
func withRewind(
    logger: Logger? = nil,
    _ configure: (inout RewindConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (TestServer) async throws -> Void
) async throws {
    try await withRewind(.sqlite, logger: logger, configure, body)
}

/// Starts Rewind on a fresh database (a SQLite file in a temporary directory, or a PostgreSQL database of its own)
/// and runs `body` against it over loopback HTTP.
func withRewind(
    _ backend: Backend,
    logger: Logger? = nil,
    _ configure: (inout RewindConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (TestServer) async throws -> Void
) async throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rewind-test-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let path = directory.appendingPathComponent("rewind.sqlite").path
    var configuration = RewindConfiguration(host: "127.0.0.1", port: 0, store: StoreConfiguration(path: path))
    configure(&configuration)
    if backend == .postgres {
        try await PostgresTestCluster.withDatabase(prefix: "rewind_server") { url in
            let store = try PostgresStoreConfiguration(url: url, environment: [:], idempotencyWindow: configuration.store.idempotencyWindow)
            configuration.storeOpener = .postgres(store)
            try await run(configuration, logger: logger, path: path, backend: backend, postgresURL: url, body)
        }
    } else {
        try await run(configuration, logger: logger, path: path, backend: backend, postgresURL: nil, body)
    }
}

private func run(
    _ configuration: RewindConfiguration,
    logger: Logger?,
    path: String,
    backend: Backend,
    postgresURL: String?,
    _ body: @escaping @Sendable (TestServer) async throws -> Void
) async throws {
    let logger =
        logger
        ?? {
            var logger = Logger(label: "rewind-test")
            logger.logLevel = .warning
            return logger
        }()
    let app = try await buildApplication(configuration: configuration, logger: logger)
    try await app.test(.live) { client in
        var httpConfiguration = HTTPClient.Configuration()
        httpConfiguration.connectionPool = .init(idleTimeout: .seconds(30), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)
        let http = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: httpConfiguration)
        do {
            try await body(TestServer(port: client.port!, client: http, databasePath: path, backend: backend, postgresURL: postgresURL))
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()
    }
}
