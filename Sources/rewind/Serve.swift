public import ArgumentParser
import Foundation
import Hummingbird
public import Logging
import RewindCore
import RewindServer
public import RewindStore

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Rewind server.",
        discussion: """
            Creates and migrates the database on first start. Stops gracefully on SIGTERM or SIGINT: in-flight \
            publishes commit, SSE streams end cleanly so clients reconnect with their Last-Event-ID.

            Auth is off unless a key is given (--jwt-secret-file, --jwt-secret, REWIND_JWT_SECRET or \
            --jwt-public-key), and a server without auth listens only on a loopback address.

            Examples:
              rewind serve
              rewind serve --db /var/lib/rewind/log.sqlite --port 8080
              rewind serve --host 0.0.0.0 --jwt-secret-file /etc/rewind/secret
              rewind serve --retention-max-age 30d --stream-retention 'audit.*:max-age=365d'
            """
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port = 8080

    @Option(help: "SQLite database file, created on first start; $REWIND_DB when set.")
    var db = ProcessInfo.processInfo.environment["REWIND_DB"] ?? "rewind.sqlite"

    @Option(help: "Seconds of idleness after which an SSE stream gets a heartbeat comment.")
    var heartbeat: Double = 15

    @Option(help: "Reconnection delay sent to EventSource clients, in milliseconds.")
    var retry = 3000

    @Option(help: "normal: survives the process being killed; strict: also survives power loss.")
    var durability: Durability = .normal

    @Option(help: "Largest event data, in bytes.")
    var maxEventBytes = 1 << 20

    @Option(help: "Most events in one publish request.")
    var maxBatchEvents = 10_000

    @Option(help: "Largest publish body, in bytes.")
    var maxBodyBytes = 32 << 20

    @OptionGroup var retention: RetentionOptions

    @Option(help: "How often retention is applied.")
    var maintenanceInterval = "60s"

    @Option(help: "Recent events held in memory to serve caught-up subscribers.")
    var windowEvents = 16_384

    @Option(help: "Most bytes of encoded frames held in that window.")
    var windowBytes = 32 << 20

    @Option(name: .customLong("cors-origin"), help: "Origin allowed to call the API from a browser (repeatable; * for any).")
    var corsOrigins: [String] = []

    @Option(help: "HS256 secret tokens are signed with (prefer --jwt-secret-file or REWIND_JWT_SECRET: arguments show in ps).")
    var jwtSecret: String?

    @Option(help: "HS256 secret file (a trailing newline is ignored).")
    var jwtSecretFile: String?

    @Option(help: "PEM file with the RS256 (RSA) or ES256 (P-256) public key tokens are verified with.")
    var jwtPublicKey: String?

    @Option(help: "Most SSE subscriptions open at once.")
    var maxSubscribers = 10_000

    @Option(help: "Most SSE subscriptions open at once per token subject (sub).")
    var maxSubscribersPerSubject = 1_000

    @Option(help: "Most streams and patterns one subscription may name.")
    var maxStreamsPerSubscription = 64

    @Option(help: "Largest request head (request line and headers), in bytes.")
    var maxHeaderBytes = 16 << 10

    @Option(help: "Close a connection that has not sent a complete request for this long (e.g. 30s).")
    var idleTimeout = "30s"

    @Option(help: "PEM certificate chain to serve HTTPS with (HTTP/2 and HTTP/1.1); re-read on SIGHUP.")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert; re-read on SIGHUP.")
    var tlsKey: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        _ = try retention.policy()
        guard DurationText.parse(maintenanceInterval).map({ $0 > .zero }) == true else {
            throw ValidationError("--maintenance-interval '\(maintenanceInterval)' is not a duration such as 60s")
        }
        guard windowEvents > 0, windowBytes > 0 else { throw ValidationError("--window-events and --window-bytes must be positive") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0-65535") }
        guard heartbeat > 0 else { throw ValidationError("--heartbeat must be a positive number of seconds") }
        guard retry >= 0 else { throw ValidationError("--retry must be zero or more milliseconds") }
        guard DurationText.parse(idleTimeout).map({ $0 > .zero }) == true else {
            throw ValidationError("--idle-timeout '\(idleTimeout)' is not a duration such as 30s")
        }
        guard maxSubscribers > 0, maxSubscribersPerSubject > 0, maxStreamsPerSubscription > 0, maxHeaderBytes >= 1024 else {
            throw ValidationError(
                "--max-subscribers, --max-subscribers-per-subject and --max-streams-per-subscription must be positive, --max-header-bytes at least 1024"
            )
        }
        if [jwtSecret, jwtSecretFile, jwtPublicKey].compactMap({ $0 }).count > 1 {
            throw ValidationError("give one of --jwt-secret, --jwt-secret-file and --jwt-public-key")
        }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("give --tls-cert and --tls-key together") }
        guard maxEventBytes > 0, maxBatchEvents > 0, maxBodyBytes > 0 else {
            throw ValidationError("--max-event-bytes, --max-batch-events and --max-body-bytes must be positive")
        }
    }

    func run() async throws {
        var logger = Logger(label: "rewind")
        logger.logLevel = logLevel
        var configuration = RewindConfiguration(
            host: host,
            port: port,
            store: StoreConfiguration(path: db, durability: durability),
            heartbeat: .milliseconds(Int64(heartbeat * 1000)),
            retryMilliseconds: retry,
            publishLimits: PublishLimits(maxEventBytes: maxEventBytes, maxBatchEvents: maxBatchEvents),
            maxBodyBytes: maxBodyBytes,
            corsOrigins: corsOrigins,
            retention: try retention.policy(),
            maintenanceInterval: DurationText.parse(maintenanceInterval)!,
            windowEvents: windowEvents,
            windowBytes: windowBytes
        )
        configuration.auth = try tokenKey()
        configuration.maxSubscribers = maxSubscribers
        configuration.maxSubscribersPerSubject = maxSubscribersPerSubject
        configuration.maxStreamsPerSubscription = maxStreamsPerSubscription
        configuration.maxHeaderBytes = maxHeaderBytes
        configuration.idleTimeout = DurationText.parse(idleTimeout)!
        if let tlsCert, let tlsKey {
            do {
                configuration.tls = try TLSCertificates(certificate: tlsCert, key: tlsKey)
            } catch {
                throw CommandFailure(message: error.description)
            }
        }
        let app = try await buildApplication(configuration: configuration, logger: logger)
        try await app.runService()
    }
}

extension Serve {
    /// The key from the auth flags, or from `REWIND_JWT_SECRET` when none is given; nil leaves auth off.
    func tokenKey() throws -> TokenKey? {
        try readTokenKey(
            pemFile: jwtPublicKey,
            pemFlag: "--jwt-public-key",
            pem: { .publicKey(pem: $0) },
            secretFile: jwtSecretFile,
            secretFileFlag: "--jwt-secret-file",
            secret: jwtSecret
        )
    }
}

extension Durability: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
