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

extension AppendRequest {
    /// One of this request's events as committed: with its id and the commit's time.
    package func committed(_ event: NewEvent, id: Int64, time: Timestamp) -> Event {
        Event(
            id: id,
            stream: stream.rawValue,
            type: event.type.rawValue,
            data: event.data,
            isJSON: event.isJSON,
            time: time,
            key: idempotencyKey
        )
    }
}
