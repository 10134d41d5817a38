/// `rewind bench replay`: N stored events read from the oldest over one SSE connection.
public struct ReplayOptions: Sendable {
    /// Where the preload publishes; its connections take the templates in turn. Not empty.
    public var publish: [URLTemplate]
    /// Must start from the oldest event, e.g. Rewind's `...?from=earliest`.
    public var subscribe: URLTemplate
    public var events: Int
    /// Events per preload request (NDJSON above 1).
    public var preloadBatch: Int
    public var preloadConnections: Int
    public var eventSize: Int
    public var stream: String
    /// Publish the events first; false when the stream already holds them.
    public var preload: Bool

    public init(
        publish: [URLTemplate],
        subscribe: URLTemplate,
        events: Int,
        preloadBatch: Int = 1,
        preloadConnections: Int = 8,
        eventSize: Int = 64,
        stream: String,
        preload: Bool = true
    ) {
        self.publish = publish
        self.subscribe = subscribe
        self.events = events
        self.preloadBatch = preloadBatch
        self.preloadConnections = preloadConnections
        self.eventSize = eventSize
        self.stream = stream
        self.preload = preload
    }
}
