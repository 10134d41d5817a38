public import RewindCore

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
