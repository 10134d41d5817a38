public import RewindCore

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
