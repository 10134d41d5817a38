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

    public init(stream: String, firstID: Int64, lastID: Int64, time: Timestamp, replayed: Bool) {
        self.stream = stream
        self.firstID = firstID
        self.lastID = lastID
        self.time = time
        self.replayed = replayed
    }
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

    public init(events: [Event], scannedThrough: Int64, head: Int64) {
        self.events = events
        self.scannedThrough = scannedThrough
        self.head = head
    }
}

/// An event as a `scan` hands it over: its type and data as the database holds them, valid only during the visit.
public struct RawEvent {
    public let id: Int64
    public let type: UnsafeBufferPointer<UInt8>
    public let data: UnsafeBufferPointer<UInt8>

    public init(id: Int64, type: UnsafeBufferPointer<UInt8>, data: UnsafeBufferPointer<UInt8>) {
        self.id = id
        self.type = type
        self.data = data
    }
}

/// What a `scan` looked through; the same bounds a `ReadPage` carries.
public struct PageSummary: Sendable {
    public var count: Int
    public var firstID: Int64?
    public var scannedThrough: Int64
    public var head: Int64
    /// The highest id removed (by retention or deletion) from any stream the query covers; a cursor below it
    /// has missed events.
    public var prunedThrough: Int64

    public init(count: Int, firstID: Int64?, scannedThrough: Int64, head: Int64, prunedThrough: Int64) {
        self.count = count
        self.firstID = firstID
        self.scannedThrough = scannedThrough
        self.head = head
        self.prunedThrough = prunedThrough
    }
}

/// A stream as the log knows it.
public enum StreamStatus: Sendable, Equatable {
    /// Never had an event.
    case unknown
    case live(StreamInfo)
    /// Deleted at this time: its events are gone and its name cannot take new ones.
    case deleted(at: Timestamp)
}

/// How long events are kept: a default for every stream and rules for streams by name or trailing-`*` pattern.
public struct RetentionPolicy: Sendable, Equatable {
    public struct Limits: Sendable, Equatable {
        /// Events older than this are removed.
        public var maxAge: Duration?
        /// Only the newest this many events of a stream are kept.
        public var maxEvents: Int64?

        public init(maxAge: Duration? = nil, maxEvents: Int64? = nil) {
            self.maxAge = maxAge
            self.maxEvents = maxEvents
        }

        public var isUnlimited: Bool { maxAge == nil && maxEvents == nil }
    }

    public var defaults: Limits
    /// `(pattern, limits)`: the first rule whose pattern covers a stream applies to it instead of the defaults.
    public var rules: [(pattern: EventFilter, limits: Limits)]

    public init(defaults: Limits = Limits(), rules: [(pattern: EventFilter, limits: Limits)] = []) {
        self.defaults = defaults
        self.rules = rules
    }

    public func limits(for stream: String) -> Limits {
        rules.first { $0.pattern.covers(stream: stream) }?.limits ?? defaults
    }

    public var isUnlimited: Bool { defaults.isUnlimited && rules.allSatisfy { $0.limits.isUnlimited } }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.defaults == rhs.defaults && lhs.rules.map(\.pattern) == rhs.rules.map(\.pattern)
            && lhs.rules.map(\.limits) == rhs.rules.map(\.limits)
    }
}

extension RetentionPolicy: CustomStringConvertible {
    /// The policy in the flags' own terms: `max-age=30d,max-events=1000; orders.*: max-events=10`.
    public var description: String {
        func text(_ limits: Limits) -> String {
            var parts: [String] = []
            if let age = limits.maxAge { parts.append("max-age=\(Self.durationText(age))") }
            if let count = limits.maxEvents { parts.append("max-events=\(count)") }
            return parts.isEmpty ? "unlimited" : parts.joined(separator: ",")
        }
        var out = [text(defaults)]
        for rule in rules {
            let pattern = rule.pattern.allStreams ? "*" : (rule.pattern.names + rule.pattern.prefixes.map { $0 + "*" }).joined(separator: ",")
            out.append("\(pattern): \(text(rule.limits))")
        }
        return out.joined(separator: "; ")
    }

    /// A duration in the largest unit that divides it exactly, as the retention flags take it.
    static func durationText(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        for (unit, size) in [("d", Int64(86_400)), ("h", 3_600), ("m", 60)] where seconds > 0 && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }
}

/// What a pruning pass removed.
public struct PruneReport: Sendable, Equatable {
    public var events: Int64 = 0
    public var bytes: Int64 = 0
    /// Streams that lost events, with the highest id removed from each.
    public var streams: [String: Int64] = [:]
    /// Streams that lost events, with how many each lost.
    public var counts: [String: Int64] = [:]

    public init() {}
}

/// What `GET /v1/streams` lists for a stream.
public struct StreamInfo: Sendable, Equatable {
    public var name: String
    public var count: Int64
    public var firstID: Int64
    public var lastID: Int64
    public var lastTime: Timestamp
    public var bytes: Int64

    public init(name: String, count: Int64, firstID: Int64, lastID: Int64, lastTime: Timestamp, bytes: Int64) {
        self.name = name
        self.count = count
        self.firstID = firstID
        self.lastID = lastID
        self.lastTime = lastTime
        self.bytes = bytes
    }
}
