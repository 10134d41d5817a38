public import RewindCore

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
