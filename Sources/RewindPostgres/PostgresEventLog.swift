public import CoreMetrics
internal import Foundation
public import Logging
internal import NIOCore
internal import PostgresNIO
public import RewindCore
public import RewindStore
import ServiceLifecycle
import Synchronization

/// The PostgreSQL event log: the same calls and results as the SQLite `EventLog`, on a database that several
/// Rewind processes may share.
///
/// **Ids in commit order.** Every event has one id from one global space, and ids become visible in the order
/// they were given: once any reader has seen id N, no event with an id below N can appear later. A reader that
/// pages by id from its cursor (`read(after:)`, every SSE subscription) relies on this; if a lower id could
/// commit after a higher one, the reader would already have moved past it and never see it. A PostgreSQL
/// sequence alone does not give this: `nextval` hands out numbers at once, but the transactions holding them
/// commit in any order. So every writing transaction starts by locking the single row of `log_head`
/// (`SELECT head, chain_tip, last_time FROM log_head FOR UPDATE`), takes its ids after `head`, and moves `head`
/// before `COMMIT`. The next writer, in this process or any other on the same database, waits on that row lock
/// until the holder committed (or rolled back), then reads the head the holder left, so commits are totally
/// ordered and each one's ids are above every id committed before it. A row lock is released only after the
/// transaction became visible, so a snapshot that sees a commit also sees every commit before it; reads take
/// the head and the page in one statement, hence one snapshot, and never report a position they could not
/// see. The audit chain's tip and the commit time ride on the same row, so the chain follows commit order and
/// commit times never go backwards. The cost, one commit at a time per database, is paid once per group commit,
/// not per event.
///
/// **Group commit.** Concurrent `append` calls are committed together, as `EventLog` does: whichever call finds
/// the writer idle becomes the leader and commits every request queued meanwhile in one transaction, then hands
/// the lead to the first request that queued during its commit. Each caller returns only after PostgreSQL's
/// `COMMIT` returned, with `synchronous_commit` as the server has it (`off` weakens the promise to "committed,
/// flushed soon").
///
/// **Lifecycle.** `open` checks the settings, connects once and migrates; `run()` (a swift-service-lifecycle
/// `Service`) runs the connection pool, and at graceful shutdown stops taking appends, lets the commit in flight
/// finish and closes the pool. Every operation answers within `configuration.timeout`: an unreachable server is
/// `StoreError.unavailable`, not a hang.
public final class PostgresEventLog: EventStore {
    public let configuration: PostgresStoreConfiguration
    /// Announces every commit of this process's new head to subscribers.
    public let commits: CommitHub
    let client: PostgresClient
    let logger: Logger
    /// Fails operations at once while PostgreSQL is out of reach (see `Reachability`).
    let reachability: Reachability
    private let metrics: PostgresStoreMetrics
    /// Hears other nodes' commits (`PostgresEventLog+Listen.swift`).
    let listener: CommitListener
    private let writer = Mutex(WriterState())
    final class CommitObserver: Sendable {
        let handler: @Sendable (_ previousHead: Int64, _ events: [Event]) -> Void
        init(_ handler: @escaping @Sendable (_ previousHead: Int64, _ events: [Event]) -> Void) { self.handler = handler }
    }
    let commitObserver = Mutex<CommitObserver?>(nil)
    /// Why the last commit failed, until a commit or a probe succeeds (see `checkWritable`).
    let writeFailure = Mutex<String?>(nil)

    private struct Pending {
        var token: Int
        var request: AppendRequest
        var continuation: CheckedContinuation<Outcome, any Error>
    }

    private enum Outcome {
        case done(AppendResult)
        case lead
    }

    private struct WriterState {
        var queue: [Pending] = []
        var committing = false
        var closed = false
        var nextToken = 0
    }

    private init(configuration: PostgresStoreConfiguration, head: Int64, maintenance: MaintenanceMark, logger: Logger, metrics: any MetricsFactory) {
        self.configuration = configuration
        self.logger = logger
        self.reachability = Reachability(configuration: configuration, logger: logger)
        self.metrics = PostgresStoreMetrics(factory: metrics)
        self.listener = CommitListener(metrics: metrics)
        self.commits = CommitHub(head: head, maintenance: maintenance)
        var options = PostgresClient.Configuration.Options()
        options.connectTimeout = configuration.timeout
        options.maximumConnections = max(2, configuration.maximumConnections)
        options.additionalStartupParameters = Self.sessionSettings(configuration)
        var client = PostgresClient.Configuration(
            host: configuration.host,
            port: configuration.port,
            username: configuration.user,
            password: configuration.password?.value,
            database: configuration.database,
            tls: Self.tls(configuration.sslMode)
        )
        client.options = options
        self.client = PostgresClient(configuration: client, backgroundLogger: logger)
    }

    /// Connects once to check the settings, applies pending migrations and reads the head. Throws
    /// `PostgresConfigurationError` for settings that cannot work (naming the problem, never the password),
    /// `StoreError.unavailable` when the server cannot be reached in time, `StoreError.schemaTooNew` for a
    /// database migrated by a newer Rewind. Run the returned log's `run()` before using it.
    public static func open(
        configuration: PostgresStoreConfiguration,
        logger: Logger,
        metrics: any MetricsFactory = NOOPMetricsHandler.instance
    ) async throws -> PostgresEventLog {
        let (head, maintenance): (Int64, MaintenanceMark) = try await withDeadline(
            configuration.timeout,
            "connecting to PostgreSQL at \(configuration.host):\(configuration.port)"
        ) {
            var settings = PostgresConnection.Configuration(
                host: configuration.host,
                port: configuration.port,
                username: configuration.user,
                password: configuration.password?.value,
                database: configuration.database,
                tls: try Self.connectionTLS(configuration.sslMode)
            )
            settings.options.connectTimeout = .nanoseconds(Int64(configuration.timeout.components.seconds) * 1_000_000_000)
            settings.options.additionalStartupParameters = Self.sessionSettings(configuration)
            do {
                let connection = try await PostgresConnection.connect(configuration: settings, id: 0, logger: logger)
                do {
                    let version = try await Self.single(connection.query("SHOW server_version_num", logger: logger), String.self)
                    guard let number = Int(version), number >= 130_000 else {
                        throw PostgresConfigurationError("PostgreSQL \(version) is too old: Rewind needs PostgreSQL 13 or newer")
                    }
                    let applied = try await Migration.migrate(connection, logger: logger)
                    if !applied.isEmpty {
                        logger.notice("applied migrations", metadata: ["db.migrations": "\(applied.joined(separator: ","))"])
                    }
                    let (head, generation, prunedThrough, deletions) = try await Self.single(
                        connection.query(
                            "SELECT h.head, m.generation, m.pruned_through, m.deletions FROM log_head AS h CROSS JOIN maintenance AS m",
                            logger: logger
                        ),
                        (Int64, Int64, Int64, Int64).self
                    )
                    try? await connection.close()
                    return (head, MaintenanceMark(generation: generation, prunedThrough: prunedThrough, deletions: deletions))
                } catch {
                    try? await connection.close()
                    throw error
                }
            } catch {
                throw PostgresFailures.map(error, configuration)
            }
        }
        let log = PostgresEventLog(configuration: configuration, head: head, maintenance: maintenance, logger: logger, metrics: metrics)
        logger.info("opened event log", metadata: ["db.url": "\(configuration)", "log.head": "\(head)"])
        return log
    }

    /// Server settings every connection starts with: statements and idle transactions end on the server's side
    /// too when they outlast the timeout, so a stalled client never holds the head row's lock for long. JIT is off:
    /// every statement Rewind runs is small and indexed, but on tables the planner has no statistics for yet its
    /// estimates pass `jit_above_cost`, and compiling then costs about 100 ms, which made the 25 ms poll of
    /// `catchUp` take that long. Bitmap scans are off: every page Rewind reads is `ORDER BY id LIMIT n`, which only
    /// an index scan hands over in order and stops early; on a table without statistics yet (a log that just grew)
    /// the planner took a bitmap scan of every event after the cursor and a sort, for each page of a replay.
    static func sessionSettings(_ configuration: PostgresStoreConfiguration) -> [(String, String)] {
        let milliseconds = configuration.timeout.components.seconds * 1000 + configuration.timeout.components.attoseconds / 1_000_000_000_000_000
        return [
            ("application_name", "rewind"),
            ("statement_timeout", "\(milliseconds)"),
            ("idle_in_transaction_session_timeout", "\(milliseconds)"),
            ("jit", "off"),
            ("enable_bitmapscan", "off"),
        ]
    }

    private static func tls(_ mode: PostgresStoreConfiguration.SSLMode) -> PostgresClient.Configuration.TLS {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable:
            return .disable
        case .allow, .prefer:
            tls.certificateVerification = .none
            return .prefer(tls)
        case .require:
            tls.certificateVerification = .none
            return .require(tls)
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
            return .require(tls)
        case .verifyFull:
            return .require(tls)
        }
    }

    static func connectionTLS(_ mode: PostgresStoreConfiguration.SSLMode) throws -> PostgresConnection.Configuration.TLS {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable:
            return .disable
        case .allow, .prefer:
            tls.certificateVerification = .none
            return .prefer(try NIOSSLContext(configuration: tls))
        case .require:
            tls.certificateVerification = .none
            return .require(try NIOSSLContext(configuration: tls))
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
            return .require(try NIOSSLContext(configuration: tls))
        case .verifyFull:
            return .require(try NIOSSLContext(configuration: tls))
        }
    }

    // MARK: - Lifecycle

    /// Runs the connection pool until graceful shutdown or cancellation, then stops taking appends, waits (within
    /// the timeout) for the commit in flight and closes the pool. The pool runs in a task of its own so that it
    /// outlives the shutdown signal until the last commit is answered.
    public func run() async throws {
        let pool = Task.detached { [client] in await client.run() }
        let listening = Task.detached { [self] in await listenForCommits() }
        try? await gracefulShutdown()
        close()
        listening.cancel()
        let deadline = ContinuousClock.now + configuration.timeout
        while writer.withLock({ $0.committing }), ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        pool.cancel()
        await pool.value
        logger.info("closed event log", metadata: ["db.url": "\(configuration)", "log.head": "\(commits.head)"])
    }

    // MARK: - Appending

    /// Commits a request's events atomically and returns their ids, or replays the earlier result of its
    /// idempotency key. Returns only once PostgreSQL's `COMMIT` returned.
    public func append(_ request: AppendRequest) async throws -> AppendResult {
        var token = 0
        let outcome = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Outcome, any Error>) in
            let role: Result<Bool, StoreError> = writer.withLock { state in
                if state.closed { return .failure(.closed) }
                // While PostgreSQL is known to be gone, a request that would wait behind the commit in flight (which
                // may take the whole timeout to fail) is answered at once: it is in no transaction, nothing of it is
                // committed, and its client can retry elsewhere or later.
                if state.committing, let reason = reachability.knownUnreachable {
                    return .failure(.unavailable("\(reason); retrying"))
                }
                state.nextToken += 1
                token = state.nextToken
                state.queue.append(Pending(token: token, request: request, continuation: continuation))
                if state.committing { return .success(false) }
                state.committing = true
                return .success(true)
            }
            switch role {
            case .failure(let error): continuation.resume(throwing: error)
            case .success(true): continuation.resume(returning: .lead)
            case .success(false): break
            }
        }
        switch outcome {
        case .done(let result): return result
        case .lead: return try await lead(ownToken: token)
        }
    }

    /// Sets the function told about every commit of this process, before subscribers are woken: the head before
    /// the commit and the events it added, in id order. Events committed by other processes are not reported;
    /// a `previousHead` other than the last reported id says some were.
    public func onCommit(_ handler: @escaping @Sendable (_ previousHead: Int64, _ events: [Event]) -> Void) {
        commitObserver.withLock { $0 = CommitObserver(handler) }
    }

    /// Stops taking appends; requests already queued are still committed by the current leader.
    public func close() {
        writer.withLock { $0.closed = true }
        commits.close()
    }

    private func lead(ownToken: Int) async throws -> AppendResult {
        let batch = writer.withLock { state in
            defer { state.queue.removeAll(keepingCapacity: true) }
            return state.queue
        }
        let results: [Result<AppendResult, any Error>]
        let started = ContinuousClock.now
        do {
            results = try await commit(batch.map(\.request)).map { $0.mapError { $0 as any Error } }
        } catch {
            let failure = PostgresFailures.map(error, configuration)
            writeFailure.withLock { $0 = "\(failure)" }
            logger.error("commit failed", metadata: ["error": "\(failure)", "commit.requests": "\(batch.count)"])
            results = Array(repeating: .failure(failure), count: batch.count)
            metrics.commitFailures.increment()
        }
        metrics.commitDuration.recordInterval(since: started)
        let next: Pending? = writer.withLock { state in
            if let first = state.queue.first { return first }
            state.committing = false
            return nil
        }
        next?.continuation.resume(returning: .lead)
        var own: Result<AppendResult, any Error>?
        for (pending, result) in zip(batch, results) {
            if pending.token == ownToken {
                own = result
                continue
            }
            switch result {
            case .success(let value): pending.continuation.resume(returning: .done(value))
            case .failure(let error): pending.continuation.resume(throwing: error)
            }
        }
        guard let own else { preconditionFailure("a leader's own request is always in the batch it commits") }
        return try own.get()
    }

    /// What one group commit did.
    private struct Committed: Sendable {
        var results: [Result<AppendResult, StoreError>]
        var previousHead: Int64
        var events: [Event]
    }

    private struct KeyID: Hashable {
        var stream: String
        var key: String
    }

    /// One transaction for a group of requests, serialized with every other writer by the `log_head` row lock
    /// (see the type's documentation).
    private func commit(_ requests: [AppendRequest]) async throws -> [Result<AppendResult, StoreError>] {
        let window = configuration.idempotencyWindow.microseconds
        // In a task of its own: the leader's caller going away (its task cancelled) must not fail the other
        // requests of the batch, nor stop a transaction whose outcome they wait for.
        let (timeout, leaseLimit) = (configuration.timeout, configuration.leaseTimeout)
        let committed = try await reachability.guarded(within: timeout) {
            try await Task { [client, logger, listener] in
                try await withPooledConnection(client, within: timeout, leaseWithin: leaseLimit, "a commit") { connection in
                    try await Self.transaction(connection, logger) { connection in
                        try await Self.commit(requests, window: window, listener: listener, connection, logger)
                    }
                }
            }.value
        }
        writeFailure.withLock { $0 = nil }
        metrics.commits.increment()
        metrics.eventsAppended.increment(by: committed.events.count)
        metrics.bytesAppended.increment(by: committed.events.reduce(0) { $0 + $1.data.utf8.count })
        metrics.idempotentReplays.increment(by: committed.results.count { (try? $0.get())?.replayed == true })
        if let last = committed.events.last {
            commitObserver.withLock { $0 }?.handler(committed.previousHead, committed.events)
            commits.publish(head: last.id)
        }
        return committed.results
    }

    private static func commit(
        _ requests: [AppendRequest],
        window: Int64,
        listener: CommitListener,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws
        -> Committed
    {
        let (head, tip, lastTime) = try await single(
            connection.query("SELECT head, chain_tip, last_time FROM log_head FOR UPDATE", logger: logger),
            (Int64, ByteBuffer, Int64).self
        )
        let time = Timestamp(microseconds: max(Timestamp.now().microseconds, lastTime))
        var remembered: [KeyID: AppendResult] = [:]
        let keyed = requests.compactMap { request in request.idempotencyKey.map { KeyID(stream: request.stream.rawValue, key: $0) } }
        if !keyed.isEmpty {
            let rows = try await connection.query(
                """
                SELECT stream, key, first_id, last_id, time FROM idempotency_keys
                WHERE (stream, key) IN (SELECT * FROM unnest(\(keyed.map(\.stream))::text[], \(keyed.map(\.key))::text[]))
                    AND time >= \(time.microseconds - window)
                """,
                logger: logger
            )
            for try await (stream, key, first, last, at) in rows.decode((String, String, Int64, Int64, Int64).self) {
                remembered[KeyID(stream: stream, key: key)] = AppendResult(
                    stream: stream,
                    firstID: first,
                    lastID: last,
                    time: Timestamp(microseconds: at),
                    replayed: true
                )
            }
        }
        var deleted: [String: Int64] = [:]
        let names = Array(Set(requests.map(\.stream.rawValue)))
        let tombstones = try await connection.query(
            "SELECT name, deleted_at FROM streams WHERE name = ANY(\(names)) AND deleted_at IS NOT NULL",
            logger: logger
        )
        for try await (name, at) in tombstones.decode((String, Int64).self) { deleted[name] = at }

        var chain = Array(tip.readableBytesView)
        var nextID = head + 1
        var results: [Result<AppendResult, StoreError>] = []
        results.reserveCapacity(requests.count)
        var committed: [Event] = []
        var rows = EventRows()
        var keys = KeyRows()
        var touched: [String: (count: Int64, first: Int64, last: Int64, bytes: Int64)] = [:]
        for request in requests {
            let stream = request.stream.rawValue
            if let key = request.idempotencyKey, let seen = remembered[KeyID(stream: stream, key: key)] {
                results.append(.success(seen))
                continue
            }
            if let deletedAt = deleted[stream] {
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
                rows.append(
                    id: nextID,
                    stream: stream,
                    type: event.type.rawValue,
                    data: event.data,
                    isJSON: event.isJSON,
                    key: request.idempotencyKey,
                    hash: chain
                )
                last = nextID
                nextID += 1
                if first == 0 { first = last }
                committed.append(
                    Event(
                        id: last,
                        stream: stream,
                        type: event.type.rawValue,
                        data: event.data,
                        isJSON: event.isJSON,
                        time: time,
                        key: request.idempotencyKey
                    )
                )
                bytes += Int64(event.data.utf8.count)
            }
            if let key = request.idempotencyKey {
                keys.append(stream: stream, key: key, first: first, last: last)
                remembered[KeyID(stream: stream, key: key)] = AppendResult(
                    stream: stream,
                    firstID: first,
                    lastID: last,
                    time: time,
                    replayed: true
                )
            }
            let count = Int64(request.events.count)
            if let seen = touched[stream] {
                touched[stream] = (seen.count + count, seen.first, last, seen.bytes + bytes)
            } else {
                touched[stream] = (count, first, last, bytes)
            }
            results.append(.success(AppendResult(stream: stream, firstID: first, lastID: last, time: time, replayed: false)))
        }
        guard !touched.isEmpty else { return Committed(results: results, previousHead: head, events: []) }
        let streams = touched.sorted { $0.key < $1.key }
        let newHead = nextID - 1
        let newTime = committed.isEmpty ? lastTime : time.microseconds
        // One statement writes the events, the keys, the stream counters and the head row, and notifies the other
        // nodes (sent by PostgreSQL at COMMIT).
        try await connection.query(
            """
            WITH new_events AS (
                INSERT INTO events (id, stream, type, data, json, time, key, hash)
                SELECT u.id, u.stream, u.type, u.data, u.json, \(time.microseconds), CASE WHEN u.keyed THEN u.key END, u.hash
                FROM unnest(\(rows.ids)::int8[], \(rows.streams)::text[], \(rows.types)::text[], \(rows.datas)::bytea[],
                    \(rows.jsons)::bool[], \(rows.keys)::text[], \(rows.keyed)::bool[], \(rows.hashes)::bytea[])
                    AS u(id, stream, type, data, json, key, keyed, hash)
            ), new_keys AS (
                INSERT INTO idempotency_keys AS i (stream, key, first_id, last_id, time)
                SELECT u.stream, u.key, u.first_id, u.last_id, \(time.microseconds)
                FROM unnest(\(keys.streams)::text[], \(keys.keys)::text[], \(keys.firsts)::int8[], \(keys.lasts)::int8[])
                    AS u(stream, key, first_id, last_id)
                ON CONFLICT (stream, key) DO UPDATE SET first_id = excluded.first_id, last_id = excluded.last_id, time = excluded.time
            ), new_counts AS (
                INSERT INTO streams AS s (name, count, first_id, last_id, last_time, bytes)
                SELECT u.name, u.count, u.first_id, u.last_id, \(time.microseconds), u.bytes
                FROM unnest(\(streams.map { $0.key })::text[], \(streams.map { $0.value.count })::int8[], \(streams.map { $0.value.first })::int8[],
                    \(streams.map { $0.value.last })::int8[], \(streams.map { $0.value.bytes })::int8[]) AS u(name, count, first_id, last_id, bytes)
                ON CONFLICT (name) DO UPDATE SET count = s.count + excluded.count, last_id = excluded.last_id,
                    last_time = excluded.last_time, bytes = s.bytes + excluded.bytes,
                    first_id = CASE WHEN s.count = 0 THEN excluded.first_id ELSE s.first_id END
            )
            UPDATE log_head SET head = \(newHead), chain_tip = \(ByteBuffer(bytes: chain)), last_time = \(newTime)
            RETURNING pg_notify(\(CommitListener.channel), \(listener.payload(head: newHead, time: time)))
            """,
            logger: logger
        )
        return Committed(results: results, previousHead: head, events: committed)
    }

    /// Columns of the events a commit inserts, bound as arrays and expanded by `unnest`: one statement for any
    /// number of events.
    private struct EventRows {
        var ids: [Int64] = []
        var streams: [String] = []
        var types: [String] = []
        var datas: [ByteBuffer] = []
        var jsons: [Bool] = []
        var keys: [String] = []
        var keyed: [Bool] = []
        var hashes: [ByteBuffer] = []

        mutating func append(id: Int64, stream: String, type: String, data: String, isJSON: Bool, key: String?, hash: [UInt8]) {
            ids.append(id)
            streams.append(stream)
            types.append(type)
            datas.append(ByteBuffer(string: data))
            jsons.append(isJSON)
            keys.append(key ?? "")
            keyed.append(key != nil)
            hashes.append(ByteBuffer(bytes: hash))
        }
    }

    private struct KeyRows {
        var streams: [String] = []
        var keys: [String] = []
        var firsts: [Int64] = []
        var lasts: [Int64] = []

        mutating func append(stream: String, key: String, first: Int64, last: Int64) {
            streams.append(stream)
            keys.append(key)
            firsts.append(first)
            lasts.append(last)
        }
    }

    // MARK: - Reading

    /// Reads one page of events after a cursor, in id order, from one snapshot of the log.
    public func read(_ query: ReadQuery) async throws -> ReadPage {
        try await withConnection("a read") { connection, logger in
            let rows = try await connection.query(Self.pageQuery(query, horizon: false), logger: logger)
            var events: [Event] = []
            events.reserveCapacity(min(query.limit, 1024))
            var head: Int64 = 0
            for try await row in rows {
                var cells = row.makeIterator()
                head = try cells.next()!.decode(Int64.self)
                _ = cells.next()
                let id = cells.next()!
                guard id.bytes != nil else { continue }
                let stream = try cells.next()!.decode(String.self)
                let type = try cells.next()!.decode(String.self)
                let data = cells.next()!.bytes.map { String(decoding: $0.readableBytesView, as: UTF8.self) } ?? ""
                let isJSON = try cells.next()!.decode(Bool.self)
                let time = try cells.next()!.decode(Int64.self)
                let key = try cells.next()!.decode(String?.self)
                events.append(
                    Event(
                        id: try id.decode(Int64.self),
                        stream: stream,
                        type: type,
                        data: data,
                        isJSON: isJSON,
                        time: Timestamp(microseconds: time),
                        key: key
                    )
                )
            }
            let scanned = Self.scannedThrough(query, count: events.count, lastID: events.last?.id, head: head)
            return ReadPage(events: events, scannedThrough: scanned, head: head)
        }
    }

    /// Reads a page as `read` does, but hands each event's type and data to `visit` as raw UTF-8 from the row's
    /// bytes, valid only during the call, instead of building `Event`s. The summary also carries the pruning
    /// horizon of the streams read, from the same snapshot.
    public func scan<Output: Sendable>(
        _ query: ReadQuery,
        into output: Output,
        _ visit: @escaping @Sendable (inout Output, RawEvent) -> Void
    ) async throws -> (output: Output, page: PageSummary) {
        try await withConnection("a read") { connection, logger in
            var output = output
            let rows = try await connection.query(Self.pageQuery(query, horizon: true, rawOnly: true), logger: logger)
            var head: Int64 = 0
            var prunedThrough: Int64 = 0
            var count = 0
            var firstID: Int64?
            var lastID: Int64?
            for try await row in rows {
                var cells = row.makeIterator()
                head = try cells.next()!.decode(Int64.self)
                prunedThrough = try cells.next()!.decode(Int64.self)
                let idCell = cells.next()!
                guard idCell.bytes != nil else { continue }
                let id = try idCell.decode(Int64.self)
                let type = cells.next()!.bytes ?? ByteBuffer()
                let data = cells.next()!.bytes ?? ByteBuffer()
                type.withUnsafeReadableBytes { type in
                    data.withUnsafeReadableBytes { data in
                        visit(&output, RawEvent(id: id, type: type.bindMemory(to: UInt8.self), data: data.bindMemory(to: UInt8.self)))
                    }
                }
                count += 1
                firstID = firstID ?? id
                lastID = id
            }
            let scanned = Self.scannedThrough(query, count: count, lastID: lastID, head: head)
            return (output, PageSummary(count: count, firstID: firstID, scannedThrough: scanned, head: head, prunedThrough: prunedThrough))
        }
    }

    /// How far a page of `count` events looked, as `EventLog` reports it.
    private static func scannedThrough(_ query: ReadQuery, count: Int, lastID: Int64?, head: Int64) -> Int64 {
        if count < query.limit || lastID == nil {
            return max(query.after, min(head, query.through ?? head))
        }
        return lastID!
    }

    /// A page read as one statement, so the head (and the pruning horizon) and the events come from one snapshot:
    /// one row per event after the head row's columns, or a single row of the head with NULL events. `rawOnly`
    /// selects only the columns `scan` hands over (id, type, data): a replay moves half the bytes and decodes
    /// five cells a row instead of nine.
    static func pageQuery(_ query: ReadQuery, horizon: Bool, rawOnly: Bool = false) -> PostgresQuery {
        var builder = QueryBuilder()
        var conditions = ["id > \(builder.bind(query.after))", "id <= h.head"]
        let filter = query.filter
        if let streams = streamCondition(filter, column: "stream", &builder) { conditions.append(streams) }
        if let through = query.through { conditions.append("id <= \(builder.bind(through))") }
        if !filter.types.isEmpty { conditions.append("type = ANY(\(builder.bind(filter.types)))") }
        let limit = builder.bind(query.limit)
        var prune = "0::int8"
        if horizon {
            var where_ = ""
            if let streams = streamCondition(filter, column: "name", &builder) { where_ = " WHERE " + streams }
            prune = "(SELECT coalesce(max(pruned_through), 0) FROM streams\(where_))"
        }
        let columns = rawOnly ? ["id", "type", "data"] : ["id", "stream", "type", "data", "json", "time", "key"]
        builder.sql = """
            SELECT h.head, \(prune), \(columns.map { "e." + $0 }.joined(separator: ", "))
            FROM log_head AS h LEFT JOIN LATERAL (
                SELECT \(columns.joined(separator: ", ")) FROM events
                WHERE \(conditions.joined(separator: " AND "))
                ORDER BY id LIMIT \(limit)) AS e ON true
            ORDER BY e.id
            """
        return builder.query
    }

    /// The SQL condition on a stream-name column that a filter's names and patterns make, or nil for all
    /// streams. A prefix is a `LIKE` pattern with its `_` escaped (stream names cannot hold `%` or `\`).
    static func streamCondition(_ filter: EventFilter, column: String, _ builder: inout QueryBuilder) -> String? {
        guard !filter.allStreams else { return nil }
        // One stream (every SSE subscription to a stream): an equality, so the (stream, id) index hands rows over in
        // id order and the LIMIT stops the scan. With `= ANY(array)` PostgreSQL 15 cannot take the index's order for
        // granted: it fetched every event of the stream after the cursor and sorted them, for every page, which
        // made replaying a stream quadratic in its length.
        if filter.names.count == 1, filter.prefixes.isEmpty, let name = filter.names.first {
            return "\(column) = \(builder.bind(name))"
        }
        var alternatives: [String] = []
        if !filter.names.isEmpty {
            alternatives.append("\(column) = ANY(\(builder.bind(filter.names)))")
        }
        for prefix in filter.prefixes {
            let pattern =
                prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "_", with: "\\_")
                .replacingOccurrences(of: "%", with: "\\%") + "%"
            alternatives.append("\(column) LIKE \(builder.bind(pattern))")
        }
        return "(" + alternatives.joined(separator: " OR ") + ")"
    }

    /// One event by id.
    public func event(id: Int64) async throws -> Event? {
        try await read(ReadQuery(after: id - 1, filter: .everything, limit: 1, through: id)).events.first
    }

    /// The id of the last event ever committed (0 for an empty log); never goes back, also after deletions.
    /// The database's size as PostgreSQL counts it (tables, indexes, TOAST), or nil when it cannot be read.
    public func storageBytes() async -> Int64? {
        try? await withConnection("reading the database size") { connection, logger in
            try await Self.single(connection.query("SELECT pg_database_size(current_database())", logger: logger), Int64.self)
        }
    }

    public func head() async throws -> Int64 {
        try await withConnection("reading the head") { connection, logger in
            try await Self.single(connection.query("SELECT head FROM log_head", logger: logger), Int64.self)
        }
    }

    /// Brings this process up to date with what any node did to the database: applies the maintenance record
    /// (migration 0002) to `commits` when it moved (a raised pruning horizon, new stream deletions), then publishes
    /// the head, so subscribers wake for other nodes' commits. One statement, hence one snapshot: the head row, the
    /// one-row maintenance record and the deletions after the last one seen (none, unless the record says there
    /// are). Cheap enough for a server to run every few milliseconds. Returns the head and the record.
    @discardableResult
    public func catchUp() async throws -> (head: Int64, maintenance: MaintenanceMark) {
        let known = commits.maintenance
        let (head, mark, deletions) = try await withConnection("reading the head") { connection, logger in
            let rows = try await connection.query(
                """
                SELECT h.head, m.generation, m.pruned_through, m.deletions, d.seq, d.stream
                FROM log_head AS h CROSS JOIN maintenance AS m LEFT JOIN LATERAL (
                    SELECT seq, stream FROM stream_deletions WHERE m.deletions > \(known.deletions) AND seq > \(known.deletions)) AS d ON true
                ORDER BY d.seq
                """,
                logger: logger
            )
            var head: Int64 = 0
            var mark = MaintenanceMark()
            var deletions: [StreamDeletion] = []
            for try await row in rows.decode((Int64, Int64, Int64, Int64, Int64?, String?).self) {
                head = row.0
                mark = MaintenanceMark(generation: row.1, prunedThrough: row.2, deletions: row.3)
                if let seq = row.4, let stream = row.5 { deletions.append(StreamDeletion(seq: seq, stream: stream)) }
            }
            return (head, mark, deletions)
        }
        if mark != known { commits.apply(mark, deletions: deletions) }
        if head > commits.head { await announce(head: head) }
        return (head, mark)
    }

    /// Every stream with its counters, by name.
    public func streams() async throws -> [StreamInfo] {
        try await withConnection("listing streams") { connection, logger in
            var out: [StreamInfo] = []
            let rows = try await connection.query(
                "SELECT name, count, first_id, last_id, last_time, bytes FROM streams WHERE deleted_at IS NULL ORDER BY name",
                logger: logger
            )
            for try await row in rows.decode((String, Int64, Int64, Int64, Int64, Int64).self) {
                out.append(Self.streamInfo(row))
            }
            return out
        }
    }

    /// One stream's counters, or whether it is unknown or deleted.
    public func status(ofStream name: String) async throws -> StreamStatus {
        try await withConnection("reading a stream's status") { connection, logger in
            let rows = try await connection.query(
                "SELECT name, count, first_id, last_id, last_time, bytes, deleted_at FROM streams WHERE name = \(name)",
                logger: logger
            )
            for try await row in rows.decode((String, Int64, Int64, Int64, Int64, Int64, Int64?).self) {
                if let deletedAt = row.6 { return .deleted(at: Timestamp(microseconds: deletedAt)) }
                return .live(Self.streamInfo((row.0, row.1, row.2, row.3, row.4, row.5)))
            }
            return .unknown
        }
    }

    private static func streamInfo(_ row: (String, Int64, Int64, Int64, Int64, Int64)) -> StreamInfo {
        StreamInfo(name: row.0, count: row.1, firstID: row.2, lastID: row.3, lastTime: Timestamp(microseconds: row.4), bytes: row.5)
    }

    /// The cursor that starts a read at the first event committed at or after `time`: that event's id minus one,
    /// or the head if there is none. Binary search over ids in one read-only snapshot, since commit times never
    /// decrease along ids (the same search as `EventLog`'s, with no index on time to keep up).
    public func cursor(since time: Timestamp) async throws -> Int64 {
        try await withConnection("finding a time's cursor") { connection, logger in
            try await Self.readOnly(connection, logger) { connection in
                try await Self.cursor(since: time, connection, logger)
            }
        }
    }

    static func cursor(since time: Timestamp, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int64 {
        func probe(_ id: Int64) async throws -> (Int64, Int64)? {
            try await first(
                connection.query("SELECT id, time FROM events WHERE id >= \(id) ORDER BY id LIMIT 1", logger: logger),
                (Int64, Int64).self
            )
        }
        guard
            let last = try await first(connection.query("SELECT id, time FROM events ORDER BY id DESC LIMIT 1", logger: logger), (Int64, Int64).self),
            last.1 >= time.microseconds
        else {
            return try await single(connection.query("SELECT head FROM log_head", logger: logger), Int64.self)
        }
        var low: Int64 = 0
        var high = last.0
        while low < high {
            let middle = low + (high - low) / 2
            guard let (id, at) = try await probe(middle) else { break }
            if at >= time.microseconds { high = middle } else { low = id + 1 }
        }
        let found = try await probe(low).map(\.0) ?? high
        return found - 1
    }

    // MARK: - Connections

    /// Runs `body` on a pooled connection within the timeout, mapping the driver's failures.
    func withConnection<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws -> T {
        do {
            return try await reachability.guarded(within: configuration.timeout) {
                try await withPooledConnection(client, within: configuration.timeout, leaseWithin: configuration.leaseTimeout, what) {
                    [logger] connection in try await body(connection, logger)
                }
            }
        } catch {
            throw PostgresFailures.map(error, configuration)
        }
    }

    /// Runs `body` in a writing transaction that first locks the head row, as commits do: every change to the log
    /// (appends, deletions, pruning, imports) happens one at a time, in one order, as SQLite's single writer
    /// gives it.
    func write<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws -> T {
        try await withConnection(what) { connection, logger in
            try await Self.transaction(connection, logger) { connection in
                try await connection.query("SELECT 1 FROM log_head FOR UPDATE", logger: logger)
                return try await body(connection, logger)
            }
        }
    }

    static func transaction<T>(_ connection: PostgresConnection, _ logger: Logger, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await connection.query("BEGIN", logger: logger)
        do {
            let value = try await body(connection)
            try await connection.query("COMMIT", logger: logger)
            return value
        } catch {
            if !connection.isClosed, !PostgresFailures.connectionLost(error) {
                _ = try? await connection.query("ROLLBACK", logger: logger)
            }
            throw error
        }
    }

    /// A read-only transaction on one snapshot, for reads made of several statements.
    static func readOnly<T>(_ connection: PostgresConnection, _ logger: Logger, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", logger: logger)
        do {
            let value = try await body(connection)
            try await connection.query("COMMIT", logger: logger)
            return value
        } catch {
            if !connection.isClosed, !PostgresFailures.connectionLost(error) {
                _ = try? await connection.query("ROLLBACK", logger: logger)
            }
            throw error
        }
    }

    /// The first row of a result decoded as `type`, or nil; the rest is drained.
    static func first<each T: PostgresDecodable & Sendable>(
        _ rows: PostgresRowSequence,
        _ type: (repeat each T).Type
    ) async throws -> (
        repeat each T
    )? {
        var found: (repeat each T)?
        for try await value in rows.decode((repeat each T).self) where found == nil { found = value }
        return found
    }

    /// The one row a query always returns.
    static func single<each T: PostgresDecodable & Sendable>(
        _ rows: PostgresRowSequence,
        _ type: (repeat each T).Type
    ) async throws -> (
        repeat each T
    ) {
        guard let value = try await first(rows, type) else { throw PostgresQueryError(message: "a query returned no row", sqlState: "-----") }
        return value
    }

    /// True once `close` was called.
    var writerClosed: Bool { writer.withLock { $0.closed } }
}

/// SQL text with numbered parameters, for statements whose shape depends on the request.
struct QueryBuilder {
    var sql = ""
    var binds = PostgresBindings()

    /// Adds a parameter and returns its placeholder.
    mutating func bind<T: PostgresDynamicTypeEncodable>(_ value: T) -> String {
        binds.append(value)
        return "$\(binds.count)"
    }

    var query: PostgresQuery { PostgresQuery(unsafeSQL: sql, binds: binds) }
}

extension Duration {
    var microseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000 + attoseconds / 1_000_000_000_000
    }
}

/// What the writer reports, under the same names as the SQLite log's.
struct PostgresStoreMetrics: Sendable {
    let eventsAppended: Counter
    let bytesAppended: Counter
    let commits: Counter
    let commitDuration: CoreMetrics.Timer
    let idempotentReplays: Counter
    let commitFailures: Counter

    init(factory: any MetricsFactory) {
        eventsAppended = Counter(label: "rewind_events_appended_total", factory: factory)
        bytesAppended = Counter(label: "rewind_appended_bytes_total", factory: factory)
        commits = Counter(label: "rewind_commits_total", factory: factory)
        commitDuration = CoreMetrics.Timer(label: "rewind_commit_duration_seconds", factory: factory)
        idempotentReplays = Counter(label: "rewind_idempotent_replays_total", factory: factory)
        commitFailures = Counter(label: "rewind_commit_failures_total", factory: factory)
    }
}

extension CoreMetrics.Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
