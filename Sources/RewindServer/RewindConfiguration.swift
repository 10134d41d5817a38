public import RewindCore
public import RewindStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Everything `rewind serve` can be told; the defaults are the documented ones.
public struct RewindConfiguration: Sendable {
    /// Address to listen on (`--host`); auth-less serving is meant for loopback.
    public var host: String
    /// Port (`--port`); 0 picks a free one (tests).
    public var port: Int
    /// The SQLite log's settings, used when `storeOpener` is nil.
    public var store: StoreConfiguration
    /// How to open the log when it is not the SQLite file `store` names (PostgreSQL: `.postgres(…)` from
    /// `RewindPostgres`), chosen where the configuration is built; the server sees only the `EventStore` it opens.
    public var storeOpener: EventStoreOpener?
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
    /// How often the database is checked for events other processes appended and maintenance they did.
    public var externalCommitPollInterval: Duration = .milliseconds(25)
    /// The same check while the store is notified of other nodes' commits (PostgreSQL's LISTEN): only a safety net
    /// then, for maintenance (a stream deleted on another node closes its subscribers here within this time) and
    /// for a listener that died unnoticed. Four looks a second cost nothing worth counting and keep deletions and
    /// pruning prompt; every commit comes through the notification anyway.
    public var externalCommitPollWhileListening: Duration = .milliseconds(250)
    /// How long this node may go without hearing other nodes' commits (its PostgreSQL listener down) before
    /// `/readyz` answers 503: a reconnect normally takes well under a second, and the poll delivers meanwhile.
    public var listenerGrace: Duration = .seconds(10)
    /// This node's name (`--node-name`, default the host name): in `/readyz` and in `rewind_node_info`, so the
    /// nodes sharing one database can be told apart.
    public var nodeName: String = RewindConfiguration.hostName
    /// Longest `wait=` a long-polling JSON read may ask for.
    public var maxLongPoll: Duration = .seconds(60)
    /// Bounds of the shared window of recent events that caught-up subscribers are served from
    /// (`--window-events`, `--window-bytes`).
    public var windowEvents: Int
    public var windowBytes: Int
    /// Origins allowed to call the API from a browser (`--cors-origin`); `*` allows any (only with auth off).
    /// Empty: no CORS headers.
    public var corsOrigins: [String]
    /// The key tokens are verified with (`--jwt-secret`, `--jwt-secret-file`, `--jwt-public-key`); nil turns auth
    /// off, which only a loopback address may do.
    public var auth: TokenKey?
    /// Open SSE subscriptions at once, in all (`--max-subscribers`) and per token subject
    /// (`--max-subscribers-per-subject`); over either, 429.
    public var maxSubscribers: Int = 10_000
    public var maxSubscribersPerSubject: Int = 1_000
    /// Streams and patterns one subscription may name (`--max-streams-per-subscription`).
    public var maxStreamsPerSubscription: Int = 64
    /// Largest request head: the request line and all headers (`--max-header-bytes`); over it the HTTP decoder
    /// answers a bare 400 and closes the connection.
    public var maxHeaderBytes: Int = 16 << 10
    /// A connection that has not sent a complete request for this long is closed (`--idle-timeout`); open
    /// responses such as SSE streams are not idle.
    public var idleTimeout: Duration = .seconds(30)
    /// Certificate and key to serve HTTPS with, HTTP/2 and HTTP/1.1 by ALPN (`--tls-cert`, `--tls-key`); nil serves
    /// plain HTTP/1.1.
    public var tls: TLSCertificates?
    /// Peers whose `Forwarded` / `X-Forwarded-For` name the client logged as `client.address` (`--trusted-proxy`);
    /// from any other peer those headers are ignored.
    public var trustedProxies: [AddressRange] = []

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

/// A configuration `rewind serve` refuses to run with, and how to fix it.
public struct InsecureConfigurationError: Error, CustomStringConvertible {
    public var description: String
}

extension RewindConfiguration {
    /// The machine's host name, or `rewind` when it cannot be read.
    public static var hostName: String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "rewind" }
        let name = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? "rewind" : name
    }

    /// True for addresses only this machine can reach.
    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host == "[::1]" || host.hasPrefix("127.")
    }

    func checkSecurity() throws(InsecureConfigurationError) {
        if auth == nil, !Self.isLoopback(host) {
            throw InsecureConfigurationError(
                description: """
                    refusing to listen on \(host) without auth: anyone who can reach it could read and write every stream. \
                    Configure tokens with --jwt-secret-file FILE, --jwt-secret or REWIND_JWT_SECRET (HS256), or --jwt-public-key FILE \
                    (RS256/ES256), or listen on 127.0.0.1
                    """
            )
        }
        if auth != nil, corsOrigins.contains("*") {
            throw InsecureConfigurationError(
                description: "--cors-origin '*' is only allowed with auth off: with tokens, list the origins allowed to use them"
            )
        }
    }
}
