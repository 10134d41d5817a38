import Foundation
import GRDB
import Logging
import PostgresNIO
import RewindCore
import RewindPostgres
import RewindStore
import RewindTestSupport
import Synchronization
import Testing

/// What the store tests call on a log, whichever backend holds it: `EventStore` and the catalog calls both logs have.
protocol StoreUnderTest: EventStore {
    func importRecords(_ records: [ImportRecord]) async throws
    func isEmpty() async throws -> Bool
}

extension EventLog: StoreUnderTest {}
extension PostgresEventLog: StoreUnderTest {}

extension StoreUnderTest {
    func prune(_ policy: RetentionPolicy, chunk: Int = 10_000) async throws -> PruneReport {
        try await prune(policy, now: .now(), chunk: chunk)
    }

    func expireIdempotencyKeys() async throws -> Int { try await expireIdempotencyKeys(now: .now()) }
}

/// A fresh, empty log on one backend, with no mock: a SQLite file in a temporary directory, or a PostgreSQL database
/// of its own on the test cluster. `open` may be called again for the same log (reopening it, or a second process
/// on it); `execute` changes the tables behind the logs' backs, as tests that punch holes in the log need.
final class TemporaryStore: Sendable {
    let backend: Backend
    /// The SQLite file, or the PostgreSQL database's URL.
    let location: String
    private let running = Mutex<[Task<Void, Never>]>([])

    private init(backend: Backend, location: String) {
        self.backend = backend
        self.location = location
    }

    /// Runs `body` with a fresh store on `backend` and removes the store afterwards (also when `body` throws).
    static func with<T>(_ backend: Backend, _ body: (TemporaryStore) async throws -> T) async throws -> T {
        switch backend {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rewind-store-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let store = TemporaryStore(backend: .sqlite, location: directory.appendingPathComponent("rewind.sqlite").path)
            return try await body(store)
        case .postgres:
            return try await PostgresTestCluster.withDatabase(prefix: "rewind_store") { url in
                let store = TemporaryStore(backend: .postgres, location: url)
                return try await withCleanup {
                    try await body(store)
                } cleanup: {
                    await store.stop()
                }
            }
        }
    }

    /// Opens (and migrates) a log on this store; nil keeps the backend's idempotency window.
    func open(idempotencyWindow: Duration? = nil) async throws -> any StoreUnderTest {
        switch backend {
        case .sqlite:
            var configuration = StoreConfiguration(path: location)
            if let idempotencyWindow { configuration.idempotencyWindow = idempotencyWindow }
            return try EventLog(configuration: configuration, logger: Self.logger)
        case .postgres:
            var configuration = try PostgresStoreConfiguration(url: location, environment: [:])
            if let idempotencyWindow { configuration.idempotencyWindow = idempotencyWindow }
            let log = try await PostgresEventLog.open(configuration: configuration, logger: Self.logger)
            // Its connection pool runs until the store is stopped, as the server's service group would run it.
            running.withLock { $0.append(Task { try? await log.run() }) }
            return log
        }
    }

    /// Runs SQL on the store's tables directly, behind every log's back.
    func execute(_ sql: String) async throws {
        switch backend {
        case .sqlite:
            let queue = try DatabaseQueue(path: location)
            try await queue.write { db in try db.execute(sql: sql) }
        case .postgres:
            let connection = try await PostgresTestCluster.connect(database: String(URLComponents(string: location)!.path.dropFirst()))
            do {
                try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Self.logger)
                try await connection.close()
            } catch {
                try? await connection.close()
                throw error
            }
        }
    }

    /// Ends the PostgreSQL logs' runs (their pools close) and waits for them.
    private func stop() async {
        let tasks = running.withLock { tasks in
            defer { tasks.removeAll() }
            return tasks
        }
        for task in tasks { task.cancel() }
        for task in tasks { await task.value }
    }

    private static let logger: Logger = {
        var logger = Logger(label: "rewind-store-test")
        logger.logLevel = .warning
        return logger
    }()
}

/// The pruning horizon a subscription's page read reports for a query.
func horizon(_ log: any EventStore, _ query: ReadQuery) async throws -> Int64 {
    try await log.scan(query, into: 0) { count, _ in count += 1 }.page.prunedThrough
}

func request(_ stream: String, _ datas: [String], key: String? = nil) throws -> AppendRequest {
    AppendRequest(stream: try StreamName(validating: stream), events: datas.map { NewEvent(data: $0) }, idempotencyKey: key)
}

/// A value shared by concurrent test tasks.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}
