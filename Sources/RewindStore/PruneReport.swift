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
