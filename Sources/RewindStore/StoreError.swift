public import RewindCore

/// Failures of the log store that a caller may need to tell apart.
public enum StoreError: Error, Sendable, CustomStringConvertible {
    /// The store cannot take writes now (disk full, read-only file, I/O error, locked past the busy timeout).
    /// Nothing of the failed request was written.
    case unavailable(String)
    /// The database was migrated by a newer version of Rewind.
    case schemaTooNew(known: [String])
    /// The writer is shutting down and takes no new appends.
    case closed
    /// The stream was deleted; its name cannot take events again.
    case streamDeleted(String, at: Timestamp)

    public var description: String {
        switch self {
        case .unavailable(let reason):
            return "the event store is unavailable: \(reason)"
        case .schemaTooNew(let known):
            return
                "the database has migrations this build does not know (it knows \(known.joined(separator: ", "))): it was written by a newer rewind"
        case .closed:
            return "the event store is shutting down"
        case .streamDeleted(let name, let time):
            return "stream \(name) was deleted at \(time)"
        }
    }
}
