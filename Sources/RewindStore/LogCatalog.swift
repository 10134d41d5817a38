public import RewindCore

/// The log as the admin commands read it, whichever database holds it: `LogReader` on a SQLite file,
/// `PostgresCatalog` on a PostgreSQL database.
///
/// A boundary of its own, beside `EventStore`, because the admin commands need what the server never does (any
/// filter over the whole log, the query plan, tombstones, storage figures, a walk over every row) and must not
/// change the log: a catalog only reads, never migrates and never takes the writers' lock, so it is safe beside a
/// running server. Every call reads one consistent snapshot. The SQL lives in the two implementations; what
/// the commands do with the rows (checking the chain, the export format, tables) is shared above them.
public protocol LogCatalog: AnyObject, Sendable {
    /// Where the log is, for messages: a path, or a URL without its password.
    var location: String { get }

    /// The events a query selects, in id order (newest first when reversed).
    func events(_ query: EventQuery) async throws -> [StoredEvent]

    /// How the database would run `query`, one line per step (`EXPLAIN QUERY PLAN` on SQLite, `EXPLAIN` on
    /// PostgreSQL), for `rewind query --explain`.
    func plan(_ query: EventQuery) async throws -> [String]

    /// Every stream with its counters, by name; deleted streams (tombstones) too when asked.
    func streams(includeDeleted: Bool) async throws -> [StreamSummary]

    /// Counts, sizes, the id and time range and the retention in force, from the counters the writers keep.
    func stats() async throws -> LogStats

    /// Reads the whole log from one snapshot, in id order: hands `begin` what comes before the first event
    /// (head, count, checkpoints, streams), then each event to `visit`, page by page, until `visit` returns false.
    /// The row is valid only during the call. `rewind verify` and `rewind export` are walks.
    func walk(_ begin: (LogOutline) throws -> Void, _ visit: (EventRow) throws -> Bool) async throws

    /// The backend's own check of its storage, as `verify --integrity` asks: SQLite's `integrity_check` or
    /// `quick_check` lines (`["ok"]` when sound); nil when the backend has none (PostgreSQL) or `none` was asked.
    func integrity(_ check: IntegrityCheck) async throws -> [String]?

    /// Lets go of the connection.
    func close() async
}

/// What a walk over the log knows before its first event, from the snapshot it reads.
public struct LogOutline: Sendable {
    /// The last id ever given out.
    public var head: Int64
    /// Events in the snapshot.
    public var events: Int64
    /// Where removed events were, in id order: the last removed id of each run and its hash.
    public var checkpoints: [(id: Int64, hash: [UInt8])]
    /// Every stream, deleted ones included.
    public var streams: [StreamSummary]

    public init(head: Int64, events: Int64, checkpoints: [(id: Int64, hash: [UInt8])], streams: [StreamSummary]) {
        self.head = head
        self.events = events
        self.checkpoints = checkpoints
        self.streams = streams
    }
}

/// One event as a walk hands it over: its text fields as the stored UTF-8 bytes, valid only during the visit,
/// so checking a long chain builds no strings.
public struct EventRow {
    public var id: Int64
    public var stream: UnsafeRawBufferPointer
    public var type: UnsafeRawBufferPointer
    public var data: UnsafeRawBufferPointer
    public var isJSON: Bool
    public var time: Int64
    public var key: UnsafeRawBufferPointer?
    /// Nil when the row has none (a SQLite log from before the audit chain).
    public var hash: UnsafeRawBufferPointer?

    public init(
        id: Int64,
        stream: UnsafeRawBufferPointer,
        type: UnsafeRawBufferPointer,
        data: UnsafeRawBufferPointer,
        isJSON: Bool,
        time: Int64,
        key: UnsafeRawBufferPointer?,
        hash: UnsafeRawBufferPointer?
    ) {
        self.id = id
        self.stream = stream
        self.type = type
        self.data = data
        self.isJSON = isJSON
        self.time = time
        self.key = key
        self.hash = hash
    }

    /// The row as values that outlive the visit.
    public var stored: StoredEvent {
        func text(_ bytes: UnsafeRawBufferPointer) -> String { String(decoding: bytes, as: UTF8.self) }
        return StoredEvent(
            event: Event(
                id: id,
                stream: text(stream),
                type: text(type),
                data: text(data),
                isJSON: isJSON,
                time: Timestamp(microseconds: time),
                key: key.map(text)
            ),
            hash: hash.map { [UInt8]($0) }
        )
    }
}

/// The writes of `rewind prune` and `rewind import`, on either backend's log (`EventLog`, `PostgresEventLog`),
/// besides the `prune` every `EventStore` has.
public protocol LogMaintenance: EventStore {
    /// What `prune` would remove now, without removing it (`rewind prune --dry-run`).
    func pruneCandidates(_ policy: RetentionPolicy, now: Timestamp) async throws -> PruneReport

    /// True when no event was ever committed to this log: only such a log takes an import.
    func isEmpty() async throws -> Bool

    /// Writes exported records as they were, ids, times and hashes included, in one transaction. The caller checks
    /// the chain; records come in id order, after every event already in the log.
    func importRecords(_ records: [ImportRecord]) async throws
}

extension EventLog: LogMaintenance {}
