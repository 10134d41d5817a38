public import RewindCore

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
