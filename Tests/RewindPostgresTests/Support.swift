import Foundation
import Logging
import PostgresNIO
import RewindCore
import RewindPostgres
import RewindStore
import RewindTestSupport
import Synchronization
import Testing

/// The cluster the tests run against (`REWIND_TEST_POSTGRES_URL`), as the shared `PostgresTestCluster` reads it.
enum TestCluster {
    static var available: Bool { PostgresTestCluster.url != nil }

    static var components: URLComponents { try! PostgresTestCluster.components() }

    /// A direct connection to `database` as the cluster's role, for setting up and inspecting.
    static func connect(database: String) async throws -> PostgresConnection {
        try await PostgresTestCluster.connect(database: database)
    }

    static var baseDatabase: String { try! PostgresTestCluster.baseDatabase() }
}

let quietLogger: Logger = {
    var logger = Logger(label: "rewind-postgres-test")
    logger.logLevel = .critical
    return logger
}()

/// A database of its own for one test, owned by the cluster's ordinary role; dropped at the end.
struct TemporaryDatabase: Sendable {
    let name: String

    /// The cluster's URL pointing at this database, with extra query parameters.
    func url(_ parameters: String = "sslmode=disable") -> String {
        var parts = TestCluster.components
        parts.path = "/" + name
        parts.query = parameters
        return parts.string!
    }

    func configuration(
        _ parameters: String = "sslmode=disable",
        idempotencyWindow: Duration = .seconds(3600)
    ) throws
        -> PostgresStoreConfiguration
    {
        try PostgresStoreConfiguration(url: url(parameters), environment: [:], idempotencyWindow: idempotencyWindow)
    }

    /// Runs SQL in this database as the owner (tampering and inspection in tests).
    func query<each T: PostgresDecodable & Sendable>(_ sql: PostgresQuery, as: (repeat each T).Type) async throws -> [(repeat each T)] {
        let connection = try await TestCluster.connect(database: name)
        defer { Task { try? await connection.close() } }
        var rows: [(repeat each T)] = []
        for try await row in try await connection.query(sql, logger: quietLogger).decode((repeat each T).self) { rows.append(row) }
        return rows
    }

    func execute(_ sql: PostgresQuery) async throws {
        let connection = try await TestCluster.connect(database: name)
        defer { Task { try? await connection.close() } }
        try await connection.query(sql, logger: quietLogger)
    }
}

/// Makes a fresh database, runs `body` with it and drops it.
func withDatabase<T>(_ body: (TemporaryDatabase) async throws -> T) async throws -> T {
    try await PostgresTestCluster.withDatabase { url in
        try await body(TemporaryDatabase(name: String(URLComponents(string: url)!.path.dropFirst())))
    }
}

/// Opens a log on `configuration`, runs it as its service would be run, hands it to `body`, then stops it.
func withLog<T: Sendable>(
    _ configuration: PostgresStoreConfiguration,
    _ body: @escaping @Sendable (PostgresEventLog) async throws -> T
) async throws
    -> T
{
    let log = try await PostgresEventLog.open(configuration: configuration, logger: quietLogger)
    return try await whileRunning(log.run) { try await body(log) }
}

/// A fresh SQLite log in a temporary directory, for running the same calls on both backends.
final class TemporarySQLiteLog: Sendable {
    let directory: URL
    let log: EventLog

    init(idempotencyWindow: Duration = .seconds(3600)) throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("rewind-pg-parity-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        log = try EventLog(
            configuration: StoreConfiguration(path: directory.appendingPathComponent("rewind.sqlite").path, idempotencyWindow: idempotencyWindow),
            logger: quietLogger
        )
    }

    deinit { try? FileManager.default.removeItem(at: directory) }
}

func request(_ stream: String, _ datas: [String], type: String = "message", key: String? = nil, json: Bool = false) throws -> AppendRequest {
    AppendRequest(
        stream: try StreamName(validating: stream),
        events: datas.map { NewEvent(type: EventType(unchecked: type), data: $0, isJSON: json) },
        idempotencyKey: key
    )
}

/// An event without its commit time, which differs between two logs given the same calls.
struct Timeless: Equatable, CustomStringConvertible {
    var id: Int64
    var stream: String
    var type: String
    var data: String
    var isJSON: Bool
    var key: String?

    init(_ event: Event) {
        (id, stream, type, data, isJSON, key) = (event.id, event.stream, event.type, event.data, event.isJSON, event.key)
    }

    var description: String { "\(id) \(stream) \(type) \(data.debugDescription)" }
}

/// A stream's counters without its last time.
struct TimelessStream: Equatable {
    var name: String
    var count: Int64
    var firstID: Int64
    var lastID: Int64
    var bytes: Int64

    init(_ info: StreamInfo) {
        (name, count, firstID, lastID, bytes) = (info.name, info.count, info.firstID, info.lastID, info.bytes)
    }
}

/// Recomputes the audit chain of a PostgreSQL log from its rows and checks every stored hash: each event chains
/// from the event or checkpoint just before it, as `rewind verify` checks the SQLite log. Returns the ids checked.
func verifyChain(_ database: TemporaryDatabase) async throws -> [Int64] {
    let events = try await database.query(
        "SELECT id, stream, type, data, time, hash FROM events ORDER BY id",
        as: (Int64, String, String, ByteBuffer, Int64, ByteBuffer).self
    )
    let checkpoints = try await database.query("SELECT id, hash FROM chain_checkpoints ORDER BY id", as: (Int64, ByteBuffer).self)
    var previous = ChainHash.genesis
    var nextCheckpoint = 0
    var checked: [Int64] = []
    for (id, stream, type, data, time, hash) in events {
        while nextCheckpoint < checkpoints.count, checkpoints[nextCheckpoint].0 < id {
            previous = Array(checkpoints[nextCheckpoint].1.readableBytesView)
            nextCheckpoint += 1
        }
        let expected = ChainHash.hash(
            previous: previous,
            id: id,
            stream: stream,
            type: type,
            time: time,
            data: String(decoding: data.readableBytesView, as: UTF8.self)
        )
        guard Array(hash.readableBytesView) == expected else {
            Issue.record("event \(id)'s hash does not chain from the one before it")
            return checked
        }
        previous = expected
        checked.append(id)
    }
    return checked
}

/// A value shared by concurrent test tasks.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}
