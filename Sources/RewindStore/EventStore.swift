public import CoreMetrics
public import Logging
public import RewindCore
public import ServiceLifecycle

/// The event log as the server uses it, whichever database holds it: the SQLite `EventLog` (one file, one process)
/// or `PostgresEventLog` (one database, any number of processes).
///
/// Kept to what the server needs, not to what SQL can do. Both backends give the same answers: ids from one global
/// space in commit order, a 201 only after the commit, tombstones, per-stream pruning horizons. The log is a
/// `Service`: run it in the application's service group, where graceful shutdown stops it taking appends after the
/// HTTP server has drained.
public protocol EventStore: AnyObject, Sendable, Service {
    /// Announces every commit's new head, and maintenance seen by `catchUp`, to subscribers.
    var commits: CommitHub { get }

    /// Commits a request's events atomically and returns their ids, or replays the earlier result of its
    /// idempotency key. Returns only once the events are durable.
    func append(_ request: AppendRequest) async throws -> AppendResult

    /// Sets the function told about every commit of this process, before subscribers are woken: the head before
    /// the commit and the events it added, in id order. A store shared by several nodes also tells it, from
    /// `catchUp`, the newest events other nodes committed (up to a bound), so the server's window of recent events
    /// serves them too; calls may then come in any order and overlap, and the receiver keeps only a gap-free run.
    func onCommit(_ handler: @escaping @Sendable (_ previousHead: Int64, _ events: [Event]) -> Void)

    /// Stops taking appends; requests already queued are still committed.
    func close()

    /// One page of events after a cursor, in id order, from one snapshot.
    func read(_ query: ReadQuery) async throws -> ReadPage

    /// A page as `read` gives it, handed to `visit` event by event as raw UTF-8 valid only during the call, with the
    /// pruning horizon of the streams read: the replay path, which builds no `Event`.
    func scan<Output: Sendable>(
        _ query: ReadQuery,
        into output: Output,
        _ visit: @escaping @Sendable (inout Output, RawEvent) -> Void
    ) async throws -> (output: Output, page: PageSummary)

    /// One event by id.
    func event(id: Int64) async throws -> Event?

    /// The id of the last event ever committed (0 for an empty log).
    func head() async throws -> Int64

    /// Every live stream with its counters, by name.
    func streams() async throws -> [StreamInfo]

    /// One stream's counters, or whether it is unknown or deleted.
    func status(ofStream name: String) async throws -> StreamStatus

    /// The cursor that starts a read at the first event committed at or after `time`.
    func cursor(since time: Timestamp) async throws -> Int64

    /// Throws `StoreError.unavailable` unless the store takes writes now (`GET /readyz`).
    func checkWritable() async throws

    /// Deletes a stream and leaves its tombstone; false if it never existed.
    func deleteStream(_ name: String) async throws -> Bool

    /// Removes what the retention policy no longer keeps, in transactions of at most `chunk` events.
    func prune(_ policy: RetentionPolicy, now: Timestamp, chunk: Int) async throws -> PruneReport

    /// Forgets idempotency keys older than the dedupe window.
    func expireIdempotencyKeys(now: Timestamp) async throws -> Int

    /// Bytes the log takes where it is stored (the SQLite file and its WAL; the PostgreSQL database), for the
    /// `rewind_log_size_bytes` gauge; nil when it cannot be told.
    func storageBytes() async -> Int64?

    /// Brings this process up to date with what any process did to the log (commits, pruning, deletions) and
    /// tells `commits`: one small read, cheap enough for a server to poll every few milliseconds.
    @discardableResult
    func catchUp() async throws -> (head: Int64, maintenance: MaintenanceMark)

    /// How this process hears of other processes' commits now: by polling only (SQLite), or by notifications that
    /// are up or down (PostgreSQL's LISTEN). The server polls slowly while notifications are up, fast otherwise, and
    /// `/readyz` fails when they have been down for too long.
    var following: Following { get }

    /// Runs `body` unless another process sharing the log is running a body under the same `name` now; nil when
    /// it is. Maintenance runs this way, so one node at a time prunes a shared database instead of all racing to.
    func exclusively<T: Sendable>(_ name: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T?
}

/// How a process hears of commits made by other processes on the same log.
public enum Following: Sendable, Equatable {
    /// No notifications: only polling the head (SQLite, whose other writers cannot tell).
    case polling
    /// Notified of every commit as it becomes visible.
    case listening
    /// Notifications are down since `since`, for `reason`; polling alone finds commits meanwhile.
    case down(since: ContinuousClock.Instant, reason: String)
}

extension EventStore {
    /// Polling only, for a store with no notifications.
    public var following: Following { .polling }

    /// Runs `body`: a store only one process writes at a time needs no lock of its own.
    public func exclusively<T: Sendable>(_ name: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        try await body()
    }
}

/// Where a log lives, as `--db` or `REWIND_DB` names it: a file path, or a `postgres://` / `postgresql://` URL.
public enum StoreLocation: Sendable, Equatable, CustomStringConvertible {
    case sqlite(path: String)
    case postgres(url: String)

    /// A value with a PostgreSQL scheme is a URL, anything else a file path.
    public init(_ value: String) {
        if value.hasPrefix("postgres://") || value.hasPrefix("postgresql://") {
            self = .postgres(url: value)
        } else {
            self = .sqlite(path: value)
        }
    }

    /// The location without a password, for logs and messages.
    public var description: String {
        switch self {
        case .sqlite(let path): return path
        case .postgres(let url): return Self.redacting(url)
        }
    }

    /// A URL with the password of its user part, if any, replaced by `********`.
    static func redacting(_ url: String) -> String {
        guard let scheme = url.firstRange(of: "://") else { return url }
        let rest = url[scheme.upperBound...]
        guard let at = rest.lastIndex(of: "@") else { return url }
        let userInfo = rest[..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<colon]) + ":********" + String(rest[at...])
    }
}

/// How the server opens its log, chosen where its configuration is built: the server only sees the `EventStore`
/// it gets. `sqlite` here; `RewindPostgres` adds `postgres`.
public struct EventStoreOpener: Sendable, CustomStringConvertible {
    /// What is opened, without secrets.
    public let description: String
    private let body: @Sendable (_ logger: Logger, _ metrics: any MetricsFactory) async throws -> any EventStore

    public init(
        _ description: String,
        _ body: @escaping @Sendable (_ logger: Logger, _ metrics: any MetricsFactory) async throws -> any EventStore
    ) {
        self.description = description
        self.body = body
    }

    /// Opens (and migrates) the log.
    public func open(logger: Logger, metrics: any MetricsFactory) async throws -> any EventStore {
        try await body(logger, metrics)
    }

    /// The SQLite log in a file.
    public static func sqlite(_ configuration: StoreConfiguration) -> EventStoreOpener {
        EventStoreOpener(configuration.path) { logger, metrics in
            try EventLog(configuration: configuration, logger: logger, metrics: metrics)
        }
    }
}

extension EventLog: EventStore {
    /// Waits for graceful shutdown, then stops taking appends and ends subscribers' waits. SQLite needs no
    /// connection pool run; the readers and the writer are GRDB's.
    public func run() async throws {
        try? await gracefulShutdown()
        close()
    }
}
