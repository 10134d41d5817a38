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
    /// Group-commits appends (see `GroupCommitter`); while PostgreSQL is known to be out of reach, a request that
    /// would wait behind the commit in flight (which may take the whole timeout to fail) is answered at once: it is
    /// in no transaction, nothing of it is committed, and its client can retry elsewhere or later.
    private let writer: GroupCommitter<AppendRequest, AppendResult>
    /// Told about every commit of this process and, from `catchUp`, of other nodes' newest events (`onCommit`).
    let commitObserver = Mutex<CommitObserver?>(nil)
    /// Held while events are handed to the observer and the head published (`handOver`).
    let handingOver = Mutex<Void>(())
    /// Where this log's last commit left the head, for chaining the next commit's hashes (`+Commit.swift`).
    let chainHint = ChainHintSlot()
    /// Why the last commit failed, until a commit or a probe succeeds (see `checkWritable`).
    let writeFailure = Mutex<String?>(nil)

    private init(configuration: PostgresStoreConfiguration, head: Int64, maintenance: MaintenanceMark, logger: Logger, metrics: any MetricsFactory) {
        self.configuration = configuration
        self.logger = logger
        let reachability = Reachability(configuration: configuration, logger: logger)
        self.reachability = reachability
        self.writer = GroupCommitter { reachability.knownUnreachable.map { StoreError.unavailable("\($0); retrying") } }
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

    /// The pool's TLS for `sslmode` (see `tlsPolicy`).
    private static func tls(_ mode: PostgresStoreConfiguration.SSLMode) -> PostgresClient.Configuration.TLS {
        guard let (tls, required) = tlsPolicy(mode) else { return .disable }
        return required ? .require(tls) : .prefer(tls)
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
        // The URL's connect_timeout is whole seconds; a timeout set in code under one second still gets one.
        settings.options.connectTimeout = .seconds(max(1, configuration.timeout.components.seconds))
        return settings
    }

    /// A direct connection's TLS for `sslmode` (see `tlsPolicy`).
    static func connectionTLS(_ mode: PostgresStoreConfiguration.SSLMode) throws -> PostgresConnection.Configuration.TLS {
        guard let (tls, required) = tlsPolicy(mode) else { return .disable }
        let context = try NIOSSLContext(configuration: tls)
        return required ? .require(context) : .prefer(context)
    }

    /// What `sslmode` asks of TLS, as libpq reads it: nil for none; otherwise whether a server without TLS is
    /// refused (`require` and up) and how far its certificate is checked (`allow`, `prefer` and `require` encrypt
    /// without checking it, `verify-ca` checks the chain, `verify-full` the host name too).
    private static func tlsPolicy(_ mode: PostgresStoreConfiguration.SSLMode) -> (configuration: TLSConfiguration, required: Bool)? {
        var tls = TLSConfiguration.makeClientConfiguration()
        switch mode {
        case .disable:
            return nil
        case .allow, .prefer:
            tls.certificateVerification = .none
            return (tls, false)
        case .require:
            tls.certificateVerification = .none
            return (tls, true)
        case .verifyCA:
            tls.certificateVerification = .noHostnameVerification
            return (tls, true)
        case .verifyFull:
            return (tls, true)
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
        while writer.isCommitting, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
        pool.cancel()
        await pool.value
        logger.info("closed event log", metadata: ["db.url": "\(configuration)", "log.head": "\(commits.head)"])
    }

    // MARK: - Appending

    /// Returns once PostgreSQL's `COMMIT` returned.
    public func append(_ request: AppendRequest) async throws -> AppendResult {
        try await writer.submit(request, pipelinedCommit: { [self] requests, handOff in try await commitGroup(requests, handOff: handOff) })
    }

    public func onCommit(_ handler: @escaping @Sendable (_ previousHead: Int64, _ events: [Event]) -> Void) {
        commitObserver.withLock { $0 = CommitObserver(handler) }
    }

    public func close() {
        writer.close()
        commits.close()
    }

    /// True once `close` was called.
    var writerClosed: Bool { writer.isClosed }

    /// Answers `unavailable` to every request waiting behind the commit in flight, once PostgreSQL is found out of
    /// reach: that commit may take the whole timeout to fail, and these requests are in no transaction yet, so their
    /// clients can retry at once (elsewhere, or here once it is back) instead of waiting it out.
    private func failWaiting(_ reason: String) {
        let failed = writer.failWaiting(StoreError.unavailable("\(reason); retrying"))
        if failed > 0 {
            logger.warning("answered requests waiting to commit: PostgreSQL is out of reach", metadata: ["commit.requests": "\(failed)"])
        }
    }

    /// The writer's commit: a failed transaction is every request's answer, mapped to what it means to the callers.
    private func commitGroup(
        _ requests: [AppendRequest],
        handOff: @escaping @Sendable () -> Void
    ) async throws -> (results: [Result<AppendResult, any Error>], announce: @Sendable () async -> Void) {
        let started = ContinuousClock.now
        defer { metrics.commitDuration.recordInterval(since: started) }
        do {
            let (results, announce) = try await commit(requests, handOff: handOff)
            return (results.map { $0.mapError { $0 as any Error } }, announce)
        } catch {
            let failure = PostgresFailures.map(error, configuration)
            writeFailure.withLock { $0 = "\(failure)" }
            logger.error("commit failed", metadata: ["error": "\(failure)", "commit.requests": "\(requests.count)"])
            metrics.commitFailures.increment()
            throw failure
        }
    }

    /// One transaction for a group of requests, serialized with every other writer by the `log_head` row lock
    /// (see the type's documentation).
    ///
    /// Returns the results, and the commit's announcement: its events to the commit observer (the server's window of
    /// recent events, which encodes them) and its head to the subscribers. The writer runs that after passing the
    /// lead on, before answering the batch, so the next commit does not wait for it; a batch of 16 000 events spends
    /// about a tenth of its cycle there.
    private func commit(
        _ requests: [AppendRequest],
        handOff: @escaping @Sendable () -> Void
    ) async throws -> (results: [Result<AppendResult, StoreError>], announce: @Sendable () async -> Void) {
        let window = configuration.idempotencyWindow.microseconds
        // Runs in a task of its own already (see `GroupCommitter`), so a leader's cancelled caller does not stop it.
        let (timeout, leaseLimit) = (configuration.timeout, configuration.leaseTimeout)
        let prepared = await PreparedCommit.make(requests, window: window, listener: listener, hint: chainHint)
        let committed = try await reachability.guarded(within: timeout) { [client, logger] in
            try await withPooledConnection(client, within: timeout, leaseWithin: leaseLimit, "a commit") { connection in
                try await Self.transaction(connection, logger) { connection in
                    try await Self.commit(prepared, connection, logger, handOff: handOff)
                }
            }
        }
        writeFailure.withLock { $0 = nil }
        metrics.commits.increment()
        metrics.eventsAppended.increment(by: committed.events.count)
        metrics.bytesAppended.increment(by: committed.events.reduce(0) { $0 + $1.data.utf8.count })
        metrics.idempotentReplays.increment(by: committed.results.count { (try? $0.get())?.replayed == true })
        return (
            committed.results,
            { [self] in
                guard let last = committed.events.last else { return }
                // Other nodes committed since this process last heard of them: their events go to the observer
                // first, so the server's window stays one run of the log instead of restarting at this commit
                // (which would send every caught-up subscriber to the log for them).
                if committed.previousHead > commits.head { await announce(head: committed.previousHead) }
                handOver(after: committed.previousHead, committed.events, head: last.id)
            }
        )
    }
}
