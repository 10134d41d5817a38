/// An event as a publisher hands it in, before the log gives it an id and a time.
public struct NewEvent: Sendable, Equatable {
    public var type: EventType
    /// UTF-8 text; for JSON-published non-string values, their compact JSON text.
    public var data: String
    /// True when `data` is JSON text published as a JSON value, so reads give it back as JSON.
    public var isJSON: Bool

    public init(type: EventType = .message, data: String, isJSON: Bool = false) {
        self.type = type
        self.data = data
        self.isJSON = isJSON
    }
}

/// An event as the log holds it.
public struct Event: Sendable, Equatable {
    public var id: Int64
    public var stream: String
    public var type: String
    public var data: String
    public var isJSON: Bool
    public var time: Timestamp
    /// The idempotency key of the request that published it, if any.
    public var key: String?

    public init(id: Int64, stream: String, type: String, data: String, isJSON: Bool, time: Timestamp, key: String?) {
        self.id = id
        self.stream = stream
        self.type = type
        self.data = data
        self.isJSON = isJSON
        self.time = time
        self.key = key
    }
}
