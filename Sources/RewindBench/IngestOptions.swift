/// `rewind bench ingest`: C keep-alive connections publishing as fast as the server answers.
public struct IngestOptions: Sendable {
    /// Connection i publishes to `publish[i % publish.count]`, so several templates spread the connections over
    /// the nodes of a cluster. Not empty.
    public var publish: [URLTemplate]
    public var connections: Int
    public var duration: Duration
    /// Events per request; above 1 the body is NDJSON (Rewind's batch publish).
    public var batch: Int
    /// Bytes of data per event.
    public var eventSize: Int
    /// Stop after this many events (used to preload a log); nil: run for `duration`.
    public var maxEvents: Int?
    public var stream: String

    public init(
        publish: [URLTemplate],
        connections: Int,
        duration: Duration,
        batch: Int = 1,
        eventSize: Int = 64,
        maxEvents: Int? = nil,
        stream: String
    ) {
        self.publish = publish
        self.connections = connections
        self.duration = duration
        self.batch = batch
        self.eventSize = eventSize
        self.maxEvents = maxEvents
        self.stream = stream
    }
}
