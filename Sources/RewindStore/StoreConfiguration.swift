/// How hard a commit presses the data to disk before the 201 goes out.
public enum Durability: String, Sendable, CaseIterable {
    /// WAL with `synchronous=NORMAL`: a committed event survives the process being killed at any moment.
    case normal
    /// WAL with `synchronous=FULL`: a committed event also survives power loss.
    case strict
}

/// Settings of the SQLite log.
public struct StoreConfiguration: Sendable {
    /// Database file; created with its schema on first open.
    public var path: String
    public var durability: Durability
    /// How long an `Idempotency-Key` is remembered per stream.
    public var idempotencyWindow: Duration
    /// Concurrent read connections (replays, JSON reads).
    public var maximumReaderCount: Int
    /// How long a write waits for a lock held by another process before the store reports itself unavailable.
    public var busyTimeout: Duration

    public init(
        path: String,
        durability: Durability = .normal,
        idempotencyWindow: Duration = .seconds(24 * 3600),
        maximumReaderCount: Int = 8,
        busyTimeout: Duration = .seconds(10)
    ) {
        self.busyTimeout = busyTimeout
        self.path = path
        self.durability = durability
        self.idempotencyWindow = idempotencyWindow
        self.maximumReaderCount = maximumReaderCount
    }
}
