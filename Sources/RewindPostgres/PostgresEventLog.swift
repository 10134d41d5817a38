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
        /// The request told to lead the next commit that has not taken the queue yet: it stays in the queue.
        var handedOver: Int?
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
        reachability.onLost { [weak self] reason in self?.failWaiting(reason) }
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
            var settings = try Self.connectionSettings(configuration)
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

    /// A direct connection's settings for `configuration`: where, who, TLS and the connect timeout. Opening the
    /// log, the listener and the admin catalog each start from these and add their session settings.
    static func connectionSettings(_ configuration: PostgresStoreConfiguration) throws -> PostgresConnection.Configuration {
        var settings = PostgresConnection.Configuration(
            host: configuration.host,
            port: configuration.port,
            username: configuration.user,
            password: configuration.password?.value,
            database: configuration.database,
            tls: try connectionTLS(configuration.sslMode)
        )
        settings.options.connectTimeout = .nanoseconds(Int64(configuration.timeout.components.seconds) * 1_000_000_000)
        return settings
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

    /// True once `close` was called.
    var writerClosed: Bool { writer.withLock { $0.closed } }

    /// Answers `unavailable` to every request waiting behind the commit in flight, once PostgreSQL is found out of
    /// reach: that commit may take the whole timeout to fail, and these requests are in no transaction yet, so their
    /// clients can retry at once (elsewhere, or here once it is back) instead of waiting it out.
    private func failWaiting(_ reason: String) {
        let waiting = writer.withLock { state -> [Pending] in
            guard state.committing else { return [] }
            let handedOver = state.handedOver
            defer { state.queue.removeAll { $0.token != handedOver } }
            return state.queue.filter { $0.token != handedOver }
        }
        for pending in waiting {
            pending.continuation.resume(throwing: StoreError.unavailable("\(reason); retrying"))
        }
        if !waiting.isEmpty {
            logger.warning("answered requests waiting to commit: PostgreSQL is out of reach", metadata: ["commit.requests": "\(waiting.count)"])
        }
    }

    private func lead(ownToken: Int) async throws -> AppendResult {
        let batch = writer.withLock { state in
            state.handedOver = nil
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
            if let first = state.queue.first {
                state.handedOver = first.token
                return first
            }
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
            if let observer = commitObserver.withLock({ $0 }) {
                // Other nodes committed since this process last heard of them: their events go to the observer
                // first, so the server's window stays one run of the log instead of restarting at this commit
                // (which would send every caught-up subscriber to the log for them).
                if committed.previousHead > commits.head { await announce(head: committed.previousHead) }
                observer.handler(committed.previousHead, committed.events)
            }
            commits.publish(head: last.id)
        }
        return committed.results
    }
}
