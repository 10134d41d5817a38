public import RewindCore

/// One publish request for the writer: a batch for one stream, committed all or nothing.
public struct AppendRequest: Sendable {
    public var stream: StreamName
    public var events: [NewEvent]
    public var idempotencyKey: String?

    public init(stream: StreamName, events: [NewEvent], idempotencyKey: String? = nil) {
        self.stream = stream
        self.events = events
        self.idempotencyKey = idempotencyKey
    }
}

/// What a committed (or idempotently replayed) request got: consecutive ids and one commit time.
public struct AppendResult: Sendable, Equatable {
    public var stream: String
    public var firstID: Int64
    public var lastID: Int64
    public var time: Timestamp
    /// True when the `Idempotency-Key` was seen before and nothing was appended.
    public var replayed: Bool

    public var ids: ClosedRange<Int64> { firstID...lastID }
}

/// A page request: events passing `filter` with `id > after` (and `id <= through`), in id order.
public struct ReadQuery: Sendable {
    public var after: Int64
    public var filter: EventFilter
    public var limit: Int
    public var through: Int64?

    public init(after: Int64, filter: EventFilter, limit: Int, through: Int64? = nil) {
        self.after = after
        self.filter = filter
        self.limit = limit
        self.through = through
    }
}

/// A page of events and how far the log was looked through to find them.
public struct ReadPage: Sendable {
    public var events: [Event]
    /// Every matching event with an id up to here is in this page or was at or before the query's cursor; the
    /// next page starts after it. Past the last event returned when filters skipped the rest of the log.
    public var scannedThrough: Int64
    /// The log's head when the page was read.
    public var head: Int64
}

/// What `GET /v1/streams` lists for a stream.
public struct StreamInfo: Sendable, Equatable {
    public var name: String
    public var count: Int64
    public var firstID: Int64
    public var lastID: Int64
    public var lastTime: Timestamp
    public var bytes: Int64
}
