public import CoreMetrics
internal import GRDB
internal import GRDBSQLite
public import Logging
public import RewindCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The SQLite event log: one writer that group-commits appends, a pool of readers for replays and queries.
///
/// Concurrent `append` calls are committed together: whichever call finds the writer idle becomes the leader and
/// commits every request queued meanwhile in one transaction, then hands the lead to the first request that
/// queued during its commit. Each caller returns only after the transaction holding its events committed, so a
/// 201 always follows durability (SPEC §5). Readers run on their own connections (WAL), so replays never wait
/// for appends and appends never wait for replays.
public final class EventLog: Sendable {
    public let configuration: StoreConfiguration
    /// Announces every commit's new head to subscribers.
    public let commits: CommitHub
    let pool: DatabasePool
    private let logger: Logger
    private let metrics: StoreMetrics
    /// Group-commits appends (see `GroupCommitter`).
    private let writer = GroupCommitter<AppendRequest, AppendResult>(commitIgnoresCancellation: true)
    /// Told about every commit of this process (`onCommit`).
    private let commitObserver = Mutex<CommitObserver?>(nil)
    /// Writes queued on GRDB's writer queue or running there, other than small commits (see `write(events:_:)`).
    let queuedWrites = Atomic<Int>(0)
    /// Why the last commit failed, until one succeeds (see `checkWritable`).
    let writeHealth = Mutex<WriteFailure?>(nil)

    /// Opens (creating if needed) the database and applies pending migrations.
    /// - Parameter metrics: where commit counters and timings go (the server's Prometheus registry).
    public init(configuration: StoreConfiguration, logger: Logger, metrics: any MetricsFactory = NOOPMetricsHandler.instance) throws {
        self.configuration = configuration
        self.logger = logger
        self.metrics = StoreMetrics(factory: metrics)
        var config = Configuration()
        config.label = "rewind"
        config.busyMode = .timeout(Double(configuration.busyTimeout.microseconds) / 1e6)
        config.maximumReaderCount = configuration.maximumReaderCount
        let synchronous = configuration.durability == .strict ? "FULL" : "NORMAL"
        config.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = \(synchronous)")
        }
        do {
            pool = try DatabasePool(path: configuration.path, configuration: config)
            try Self.enableIncrementalVacuumIfNew(pool)
            try Migration.migrate(pool)
            let hashed = try Self.backfillChain(pool)
            if hashed > 0 {
                logger.notice("hashed events from before the audit chain", metadata: ["chain.backfilled": "\(hashed)"])
            }
            let (head, maintenance) = try pool.read { db in try Self.marks(db) }
            commits = CommitHub(head: head, maintenance: maintenance)
        } catch let error as DatabaseError {
            throw StoreError.unavailable("cannot open \(configuration.path): \(error.message ?? error.description)")
        }
        logger.info(
            "opened event log",
            metadata: ["db.path": "\(configuration.path)", "log.head": "\(commits.head)", "db.durability": "\(configuration.durability)"]
        )
    }

    // MARK: - Appending

    /// Returns once the transaction holding the request's events committed, with the synchronous mode
    /// `configuration.durability` sets.
    public func append(_ request: AppendRequest) async throws -> AppendResult {
        try await writer.submit(request) { [self] requests in try await commitGroup(requests) }
    }

    /// Events committed by other processes are not reported; a `previousHead` other than the last reported id says
    /// some were.
    public func onCommit(_ handler: @escaping @Sendable (_ previousHead: Int64, _ events: [Event]) -> Void) {
        commitObserver.withLock { $0 = CommitObserver(handler) }
    }

    public func close() {
        writer.close()
        commits.close()
    }

    /// True once `close` was called.
    var writerClosed: Bool { writer.isClosed }

    /// The writer's commit: a failed transaction is every request's answer, as `StoreError.unavailable` when
    /// SQLite cannot write now.
    private func commitGroup(_ requests: [AppendRequest]) async throws -> [Result<AppendResult, any Error>] {
        let started = ContinuousClock.now
        defer { metrics.commitDuration.recordInterval(since: started) }
        do {
            return try await commit(requests).map { $0.mapError { $0 as any Error } }
        } catch {
            let failure = Self.storeError(error)
            if let database = error as? DatabaseError { recordWriteFailure(database) }
            logger.error("commit failed", metadata: ["error": "\(failure)", "commit.requests": "\(requests.count)"])
            metrics.commitFailed(error)
            throw failure
        }
    }

    /// One transaction for a group of requests. Commit times never go backwards, also across processes writing
    /// the same file, so `since` can find its place by binary search on ids.
    private func commit(_ requests: [AppendRequest]) async throws -> [Result<AppendResult, StoreError>] {
        let window = configuration.idempotencyWindow.microseconds
        let transaction: @Sendable (Database) throws -> ([Result<AppendResult, StoreError>], Int64, [Event]) = { db in
            let previousHead = try Self.head(db)
            var committed: [Event] = []
            let lastTime = try Int64.fetchOne(db.cachedStatement(sql: "SELECT time FROM events ORDER BY id DESC LIMIT 1")) ?? 0
            let time = Timestamp(microseconds: max(Timestamp.now().microseconds, lastTime))
            // Ids are given explicitly (the next after the head, as AUTOINCREMENT would) so each event's hash,
            // which covers its id, is known before its row is written.
            var nextID = previousHead + 1
            var chain = try Self.chainTip(db)
            let insert = try db.cachedStatement(
                sql: "INSERT INTO events (id, stream, type, data, json, time, key, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            )
            var results: [Result<AppendResult, StoreError>] = []
            results.reserveCapacity(requests.count)
            let tombstone = try db.cachedStatement(sql: "SELECT deleted_at FROM streams WHERE name = ? AND deleted_at IS NOT NULL")
            var touched: [String: (count: Int64, first: Int64, last: Int64, bytes: Int64)] = [:]
            for request in requests {
                let stream = request.stream.rawValue
                if let key = request.idempotencyKey,
                    let row = try Row.fetchOne(
                        db.cachedStatement(
                            sql: "SELECT first_id, last_id, time FROM idempotency_keys WHERE stream = ? AND key = ? AND time >= ?"
                        ),
                        arguments: [stream, key, time.microseconds - window]
                    )
                {
                    results.append(
                        .success(
                            AppendResult(stream: stream, firstID: row[0], lastID: row[1], time: Timestamp(microseconds: row[2]), replayed: true)
                        )
                    )
                    continue
                }
                if let deletedAt = try Int64.fetchOne(tombstone, arguments: [stream]) {
                    results.append(.failure(.streamDeleted(stream, at: Timestamp(microseconds: deletedAt))))
                    continue
                }
                var first: Int64 = 0
                var last: Int64 = 0
                var bytes: Int64 = 0
                for event in request.events {
                    chain = ChainHash.hash(
                        previous: chain,
                        id: nextID,
                        stream: stream,
                        type: event.type.rawValue,
                        time: time.microseconds,
                        data: event.data
                    )
                    try Self.insertEvent(
                        insert.sqliteStatement,
                        db,
                        id: nextID,
                        stream: stream,
                        type: event.type.rawValue,
                        data: event.data,
                        isJSON: event.isJSON,
                        time: time.microseconds,
                        key: request.idempotencyKey,
                        hash: chain
                    )
                    last = nextID
                    nextID += 1
                    if first == 0 { first = last }
                    committed.append(request.committed(event, id: last, time: time))
                    bytes += Int64(event.data.utf8.count)
                }
                if let key = request.idempotencyKey {
                    try db.cachedStatement(
                        sql: "INSERT OR REPLACE INTO idempotency_keys (stream, key, first_id, last_id, time) VALUES (?, ?, ?, ?, ?)"
                    ).execute(arguments: [stream, key, first, last, time.microseconds])
                }
                let count = Int64(request.events.count)
                if let seen = touched[stream] {
                    touched[stream] = (seen.count + count, seen.first, last, seen.bytes + bytes)
                } else {
                    touched[stream] = (count, first, last, bytes)
                }
                results.append(.success(AppendResult(stream: stream, firstID: first, lastID: last, time: time, replayed: false)))
            }
            let upsert = try db.cachedStatement(
                sql: """
                    INSERT INTO streams (name, count, first_id, last_id, last_time, bytes) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET count = count + excluded.count, last_id = excluded.last_id,
                        last_time = excluded.last_time, bytes = bytes + excluded.bytes,
                        first_id = CASE WHEN count = 0 THEN excluded.first_id ELSE first_id END
                    """
            )
            for (name, delta) in touched {
                try upsert.execute(arguments: [name, delta.count, delta.first, delta.last, time.microseconds, delta.bytes])
            }
            return (results, previousHead, committed)
        }
        let (results, previousHead, committed) = try await write(events: requests.reduce(0) { $0 + $1.events.count }, transaction)
        recordWriteSuccess()
        metrics.commits.increment()
        metrics.committed(requests: requests.count, events: committed.count)
        metrics.eventsAppended.increment(by: committed.count)
        metrics.bytesAppended.increment(by: committed.reduce(0) { $0 + $1.data.utf8.count })
        metrics.idempotentReplays.increment(by: results.count { (try? $0.get())?.replayed == true })
        if let last = committed.last {
            commitObserver.withLock { $0 }?.handler(previousHead, committed)
            commits.publish(head: last.id)
        }
        return results
    }

    /// Commits of at most this many events run on the calling thread (`writeHere`), larger ones on GRDB's writer
    /// queue (`writeOnWriterQueue`). A small commit takes tens of microseconds, less than handing it to another
    /// thread and back, which on a small virtual machine costs more than the commit itself; a large one would hold
    /// the caller's event loop, and every connection on it, for milliseconds.
    static let inlineCommitEvents = 64

    /// Commits `transaction`: on the calling thread when it is small and the writer is free, else on GRDB's writer
    /// queue. Either way the caller's cancellation does not interrupt it: the group commit's other requests wait
    /// for its outcome.
    private func write<T: Sendable>(events: Int, _ transaction: @escaping @Sendable (Database) throws -> T) async throws -> T {
        if events <= Self.inlineCommitEvents, queuedWrites.load(ordering: .relaxed) == 0, let done = try writeHere(transaction) {
            return done
        }
        return try await writeOnWriterQueue(transaction)
    }

    /// Runs `updates` in a transaction on the calling thread (a connection's event loop): GRDB's writer queue is
    /// entered synchronously. Returns nil, having written nothing, when another process holds SQLite's write lock:
    /// the caller's thread must not wait out the busy timeout. (Writes of this process other than commits go
    /// through `queuedWrite`, and while one is queued, commits take the writer queue too; one that starts between
    /// that check and this call is waited for.)
    private func writeHere<T>(_ updates: (Database) throws -> T) throws -> T? {
        try pool.writeWithoutTransaction { db -> T? in
            let connection = db.sqliteConnection
            sqlite3_busy_timeout(connection, 0)
            defer { sqlite3_busy_timeout(connection, Int32(clamping: configuration.busyTimeout.microseconds / 1000)) }
            var result: T?
            do {
                try db.inTransaction(.immediate) {
                    result = try updates(db)
                    return .commit
                }
            } catch let error as DatabaseError where error.resultCode == .SQLITE_BUSY {
                return nil
            }
            return result
        }
    }

    /// Runs `updates` in a transaction on GRDB's writer queue. Unlike GRDB's async `write`, the caller's
    /// cancellation does not interrupt it.
    private func writeOnWriterQueue<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await queuedWrite { continuation in
            pool.asyncWrite(updates) { _, result in continuation.resume(with: result) }
        }
    }

    /// A write of this process other than a small commit, on GRDB's writer queue; counted in `queuedWrites` while
    /// queued or running, so that small commits do not wait for it on an event loop.
    func queuedWrite<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await queuedWrite { continuation in
            pool.asyncWrite(updates) { _, result in continuation.resume(with: result) }
        }
    }

    /// `queuedWrite` outside a transaction.
    func queuedWriteWithoutTransaction<T: Sendable>(_ updates: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await queuedWrite { continuation in
            pool.asyncWriteWithoutTransaction { db in continuation.resume(with: Result { try updates(db) }) }
        }
    }

    private func queuedWrite<T: Sendable>(
        _ start: (CheckedContinuation<T, any Error>) -> Void
    ) async throws -> T {
        queuedWrites.add(1, ordering: .relaxed)
        defer { queuedWrites.subtract(1, ordering: .relaxed) }
        return try await withCheckedThrowingContinuation(start)
    }

    /// Runs the cached insert through SQLite's own binding calls. This is the hottest statement of the writer;
    /// boxing six values into `StatementArguments` per event cost more than SQLite's work on the row.
    private static func insertEvent(
        _ statement: SQLiteStatement,
        _ db: Database,
        id: Int64,
        stream: String,
        type: String,
        data: String,
        isJSON: Bool,
        time: Int64,
        key: String?,
        hash: [UInt8]
    ) throws {
        var data = data
        let code: Int32 = data.withUTF8 { bytes in
            sqlite3_reset(statement)
            sqlite3_bind_int64(statement, 1, id)
            bindText(statement, 2, stream)
            bindText(statement, 3, type)
            // The data's and the hash's bytes stay valid until the step below returns: SQLite need not copy them.
            if let base = bytes.baseAddress, bytes.count > 0 {
                sqlite3_bind_text(statement, 4, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), Int32(bytes.count), nil)
            } else {
                sqlite3_bind_text(statement, 4, "", 0, nil)
            }
            sqlite3_bind_int64(statement, 5, isJSON ? 1 : 0)
            sqlite3_bind_int64(statement, 6, time)
            if let key { bindText(statement, 7, key) } else { sqlite3_bind_null(statement, 7) }
            let code = hash.withUnsafeBytes { hash in
                sqlite3_bind_blob(statement, 8, hash.baseAddress, Int32(hash.count), nil)
                return sqlite3_step(statement)
            }
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
            return code
        }
        guard code == SQLITE_DONE else {
            throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
        }
    }

    /// Binds text that SQLite copies (`SQLITE_TRANSIENT`); never binds NULL for an empty string.
    private static func bindText(_ statement: SQLiteStatement, _ index: Int32, _ text: String) {
        var text = text
        text.withUTF8 { bytes in
            if let base = bytes.baseAddress, bytes.count > 0 {
                let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
                sqlite3_bind_text(statement, index, UnsafeRawPointer(base).assumingMemoryBound(to: CChar.self), Int32(bytes.count), transient)
            } else {
                sqlite3_bind_text(statement, index, "", 0, nil)
            }
        }
    }

    /// Maps SQLite failures that mean "cannot write now" to `StoreError.unavailable`.
    static func storeError(_ error: any Error) -> any Error {
        guard let error = error as? DatabaseError else { return error }
        switch error.resultCode {
        case .SQLITE_FULL, .SQLITE_READONLY, .SQLITE_IOERR, .SQLITE_BUSY, .SQLITE_LOCKED, .SQLITE_CANTOPEN, .SQLITE_PERM,
            .SQLITE_CORRUPT, .SQLITE_NOTADB:
            return StoreError.unavailable(error.message ?? "\(error.resultCode)")
        default:
            return error
        }
    }
}

extension Timestamp {
    /// The system's wall-clock time.
    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(microseconds: Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000)
    }
}

extension Duration {
    var microseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}
