public import RewindCore
public import RewindStore

/// Everything `rewind serve` can be told; the defaults are the documented ones.
public struct RewindConfiguration: Sendable {
    /// Address to listen on (`--host`); auth-less serving is meant for loopback.
    public var host: String
    /// Port (`--port`); 0 picks a free one (tests).
    public var port: Int
    public var store: StoreConfiguration
    /// Idle time after which an SSE stream gets a comment line (`--heartbeat`).
    public var heartbeat: Duration
    /// Reconnection delay sent to EventSource clients in `retry:` (`--retry`, milliseconds).
    public var retryMilliseconds: Int
    /// Per-event and per-batch limits of publish requests.
    public var publishLimits: PublishLimits
    /// Largest publish request body, in bytes (`--max-body-bytes`).
    public var maxBodyBytes: Int
    /// Events a JSON read returns without `limit`, and the most it may ask for.
    public var defaultReadLimit: Int
    public var maxReadLimit: Int
    /// What is kept of each stream, applied every `maintenanceInterval` (`--retention-max-age`,
    /// `--retention-max-events`, `--stream-retention`).
    public var retention: RetentionPolicy
    public var maintenanceInterval: Duration
    /// How often the database is checked for events other processes appended.
    public var externalCommitPollInterval: Duration = .milliseconds(25)
    /// Longest `wait=` a long-polling JSON read may ask for.
    public var maxLongPoll: Duration = .seconds(60)
    /// Bounds of the shared window of recent events that caught-up subscribers are served from
    /// (`--window-events`, `--window-bytes`).
    public var windowEvents: Int
    public var windowBytes: Int
    /// Origins allowed to call the API from a browser (`--cors-origin`); `*` allows any. Empty: no CORS headers.
    public var corsOrigins: [String]

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        store: StoreConfiguration = StoreConfiguration(path: "rewind.sqlite"),
        heartbeat: Duration = .seconds(15),
        retryMilliseconds: Int = 3000,
        publishLimits: PublishLimits = PublishLimits(),
        maxBodyBytes: Int = 32 << 20,
        defaultReadLimit: Int = 100,
        maxReadLimit: Int = 10_000,
        corsOrigins: [String] = [],
        retention: RetentionPolicy = RetentionPolicy(),
        maintenanceInterval: Duration = .seconds(60),
        windowEvents: Int = 16_384,
        windowBytes: Int = 32 << 20
    ) {
        self.windowEvents = windowEvents
        self.retention = retention
        self.maintenanceInterval = maintenanceInterval
        self.windowBytes = windowBytes
        self.corsOrigins = corsOrigins
        self.host = host
        self.port = port
        self.store = store
        self.heartbeat = heartbeat
        self.retryMilliseconds = retryMilliseconds
        self.publishLimits = publishLimits
        self.maxBodyBytes = maxBodyBytes
        self.defaultReadLimit = defaultReadLimit
        self.maxReadLimit = maxReadLimit
    }
}
