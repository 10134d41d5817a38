import ArgumentParser
import Logging
import RewindCore
import RewindPostgres
import RewindServer
import RewindStore

/// The settings of `rewind serve` checked and turned into the server's configuration; any value out of range is a
/// usage error naming its option, wherever it came from.
struct ResolvedServe {
    var configuration: RewindConfiguration
    var logLevel: Logger.Level
    var logFormat: LogFormat

    init(_ settings: ServeSettings) throws {
        func fail(_ message: String) -> UsageFailure { UsageFailure(message: message) }
        func int(_ name: String, _ fallback: Int, minimum: Int = 1) throws -> Int {
            let value = settings.int(name) ?? fallback
            guard value >= minimum else { throw fail("--\(name) must be at least \(minimum), not \(value)") }
            return value
        }
        func duration(_ name: String, _ fallback: String) throws -> Duration {
            let text = settings.string(name) ?? fallback
            guard let value = DurationText.parse(text), value > .zero else {
                throw fail("--\(name) '\(text)' is not a duration such as \(fallback)")
            }
            return value
        }
        let port = try int("port", 8080, minimum: 0)
        guard port <= 65535 else { throw fail("--port must be 0-65535") }
        let heartbeat = settings.double("heartbeat") ?? 15
        guard heartbeat > 0 else { throw fail("--heartbeat must be a positive number of seconds") }
        let durabilityText = settings.string("durability") ?? "normal"
        guard let durability = Durability(rawValue: durabilityText) else {
            throw fail("--durability '\(durabilityText)' is not normal or strict")
        }
        let retention: RetentionPolicy
        do {
            retention = try makeRetentionPolicy(
                maxAge: settings.string("retention-max-age"),
                maxEvents: settings.int("retention-max-events").map(Int64.init),
                streamRules: settings.strings("stream-retention")
            )
        } catch let error as ArgumentParser.ValidationError {
            throw fail(error.message)
        }
        // `--db` (or REWIND_DB) names a file or, by its scheme, a PostgreSQL database; the server gets only the
        // opener, never the URL.
        let location = StoreLocation(settings.string("db") ?? "rewind.sqlite")
        var sqlitePath = "rewind.sqlite"
        var storeOpener: EventStoreOpener?
        switch location {
        case .sqlite(let path): sqlitePath = path
        case .postgres(let url): storeOpener = .postgres(try PostgresStoreConfiguration(url: url))
        }
        var configuration = RewindConfiguration(
            host: settings.string("host") ?? "127.0.0.1",
            port: port,
            store: StoreConfiguration(path: sqlitePath, durability: durability),
            heartbeat: .milliseconds(Int64(heartbeat * 1000)),
            retryMilliseconds: try int("retry", 3000, minimum: 0),
            publishLimits: PublishLimits(
                maxEventBytes: try int("max-event-bytes", 1 << 20),
                maxBatchEvents: try int("max-batch-events", 10_000)
            ),
            maxBodyBytes: try int("max-body-bytes", 32 << 20),
            corsOrigins: settings.strings("cors-origin"),
            retention: retention,
            maintenanceInterval: try duration("maintenance-interval", "60s"),
            windowEvents: try int("window-events", 16_384),
            windowBytes: try int("window-bytes", 32 << 20)
        )
        configuration.storeOpener = storeOpener
        configuration.maxSubscribers = try int("max-subscribers", 10_000)
        configuration.maxSubscribersPerSubject = try int("max-subscribers-per-subject", 1_000)
        configuration.maxStreamsPerSubscription = try int("max-streams-per-subscription", 64)
        configuration.maxHeaderBytes = try int("max-header-bytes", 16 << 10, minimum: 1024)
        configuration.idleTimeout = try duration("idle-timeout", "30s")
        // The key comes from the most important place that names one (a flag over REWIND_JWT_SECRET over the file);
        // two ways in the same place are an error.
        let keyOptions = ["jwt-secret", "jwt-secret-file", "jwt-public-key"]
        let best = keyOptions.compactMap { settings.rank($0) }.min()
        let chosen = keyOptions.filter { best != nil && settings.rank($0) == best }
        if chosen.count > 1 { throw fail("give one of --jwt-secret, --jwt-secret-file and --jwt-public-key") }
        func key(_ name: String) -> String? { chosen.contains(name) ? settings.string(name) : nil }
        configuration.auth = try readTokenKey(
            pemFile: key("jwt-public-key"),
            pemFlag: "--jwt-public-key",
            pem: { .publicKey(pem: $0) },
            secretFile: key("jwt-secret-file"),
            secretFileFlag: "--jwt-secret-file",
            secret: key("jwt-secret")
        )
        let tlsCert = settings.string("tls-cert")
        let tlsKey = settings.string("tls-key")
        if (tlsCert == nil) != (tlsKey == nil) { throw fail("give --tls-cert and --tls-key together") }
        if let tlsCert, let tlsKey {
            do {
                configuration.tls = try TLSCertificates(certificate: tlsCert, key: tlsKey)
            } catch {
                throw CommandFailure(message: error.description)
            }
        }
        configuration.trustedProxies = try settings.strings("trusted-proxy").map { text in
            guard let range = AddressRange(text) else {
                throw fail("--trusted-proxy '\(text)' is not an address range such as 10.0.0.0/8 or ::1/128")
            }
            return range
        }
        if let name = settings.string("node-name") {
            guard !name.isEmpty, name.count <= 128, name.allSatisfy({ !$0.isWhitespace && !$0.isNewline && $0 != "\"" && $0 != "\\" }) else {
                throw fail("--node-name '\(name)' must be 1-128 characters without spaces, quotes or backslashes")
            }
            configuration.nodeName = name
        }
        self.configuration = configuration
        let levelText = settings.string("log-level") ?? "info"
        guard let level = Logger.Level(rawValue: levelText) else {
            throw fail("--log-level '\(levelText)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        logLevel = level
        let formatText = settings.string("log-format") ?? "text"
        guard let format = LogFormat(rawValue: formatText) else { throw fail("--log-format '\(formatText)' is not text or json") }
        logFormat = format
    }
}
