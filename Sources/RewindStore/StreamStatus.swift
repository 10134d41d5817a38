public import RewindCore

/// A stream as the log knows it.
public enum StreamStatus: Sendable, Equatable {
    /// Never had an event.
    case unknown
    case live(StreamInfo)
    /// Deleted at this time: its events are gone and its name cannot take new ones.
    case deleted(at: Timestamp)
}
