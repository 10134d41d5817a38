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
