public import ArgumentParser
import Configuration
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
              rewind serve --retention-max-age 30d --stream-retention 'audit:'
              rewind serve --db postgres://rewind@db.example/rewind --node-name rewind-2
            """
    )

    @Option(help: "Address to listen on (default: 127.0.0.1).")
    var host: String?

    @Option(help: "Port to listen on (default: 8080).")
    var port: Int?

    @Option(
        help: ArgumentHelp(
            "SQLite database file, created on first start, or a postgres:// URL (default: rewind.sqlite).",
            valueName: "path-or-url"
        )
    )
    var db: String?

    @Option(help: "Seconds of idleness after which an SSE stream gets a heartbeat comment (default: 15).")
    var heartbeat: Double?

    @Option(help: "Reconnection delay sent to EventSource clients, in milliseconds (default: 3000).")
    var retry: Int?

    @Option(help: "normal: survives the process being killed; strict: also survives power loss (default: normal).")
    var durability: Durability?

    @Option(help: "Largest event data, in bytes (default: 1048576).")
    var maxEventBytes: Int?

    @Option(help: "Most events in one publish request (default: 10000).")
    var maxBatchEvents: Int?

    @Option(help: "Largest publish body, in bytes (default: 33554432).")
    var maxBodyBytes: Int?

    @OptionGroup var retention: RetentionOptions

    @Option(help: "How often retention is applied (default: 60s).")
    var maintenanceInterval: String?

    @Option(help: "Recent events held in memory to serve caught-up subscribers (default: 16384).")
    var windowEvents: Int?

    @Option(help: "Most bytes of encoded frames held in that window (default: 33554432).")
    var windowBytes: Int?

    @Option(name: .customLong("cors-origin"), help: "Origin allowed to call the API from a browser (repeatable; * for any).")
    var corsOrigins: [String] = []

    @Option(help: "HS256 secret tokens are signed with (prefer --jwt-secret-file or REWIND_JWT_SECRET: arguments show in ps).")
    var jwtSecret: String?

    @Option(help: "HS256 secret file (a trailing newline is ignored).")
    var jwtSecretFile: String?

    @Option(help: "PEM file with the RS256 (RSA) or ES256 (P-256) public key tokens are verified with.")
    var jwtPublicKey: String?

    @Option(help: "Most SSE subscriptions open at once (default: 10000).")
    var maxSubscribers: Int?

    @Option(help: "Most SSE subscriptions open at once per token subject (sub) (default: 1000).")
    var maxSubscribersPerSubject: Int?

    @Option(help: "Most streams and patterns one subscription may name (default: 64).")
    var maxStreamsPerSubscription: Int?

    @Option(help: "Largest request head (request line and headers), in bytes (default: 16384).")
    var maxHeaderBytes: Int?

    @Option(help: "Close a connection that has not sent a complete request for this long (default: 30s).")
    var idleTimeout: String?

    @Option(help: "PEM certificate chain to serve HTTPS with (HTTP/2 and HTTP/1.1); re-read on SIGHUP.")
    var tlsCert: String?

    @Option(help: "PEM private key of --tls-cert; re-read on SIGHUP.")
    var tlsKey: String?

    @Option(
        name: .customLong("trusted-proxy"),
        help: "Address range (CIDR) of a proxy whose X-Forwarded-For or Forwarded names the client in logs (repeatable)."
    )
    var trustedProxies: [String] = []

    @Option(help: "This node's name in /readyz and in the rewind_node_info metric (default: the host name).")
    var nodeName: String?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical (default: info).")
    var logLevel: Logger.Level?

    @Option(help: "Log lines as text or json (default: text).")
    var logFormat: LogFormat?

    @Option(help: "YAML file whose keys are these options' long names (lists for repeatable ones).")
    var config: String?

    @Flag(help: "Print the effective configuration and where each value came from, then exit.")
    var printConfig = false

    /// The options given on the command line, by long name.
    var flags: [String: ConfigContent] {
        var flags: [String: ConfigContent] = [:]
        func set(_ name: String, _ value: ConfigContent?) { if let value { flags[name] = value } }
        set("host", host.map { .string($0) })
        set("port", port.map { .int($0) })
        set("db", db.map { .string($0) })
        set("heartbeat", heartbeat.map { .double($0) })
        set("retry", retry.map { .int($0) })
        set("durability", durability.map { .string($0.rawValue) })
        set("max-event-bytes", maxEventBytes.map { .int($0) })
        set("max-batch-events", maxBatchEvents.map { .int($0) })
        set("max-body-bytes", maxBodyBytes.map { .int($0) })
        set("retention-max-age", retention.retentionMaxAge.map { .string($0) })
        set("retention-max-events", retention.retentionMaxEvents.map { .int(Int($0)) })
        set("stream-retention", retention.streamRetention.isEmpty ? nil : .stringArray(retention.streamRetention))
        set("maintenance-interval", maintenanceInterval.map { .string($0) })
        set("window-events", windowEvents.map { .int($0) })
        set("window-bytes", windowBytes.map { .int($0) })
        set("cors-origin", corsOrigins.isEmpty ? nil : .stringArray(corsOrigins))
        set("jwt-secret", jwtSecret.map { .string($0) })
        set("jwt-secret-file", jwtSecretFile.map { .string($0) })
        set("jwt-public-key", jwtPublicKey.map { .string($0) })
        set("max-subscribers", maxSubscribers.map { .int($0) })
        set("max-subscribers-per-subject", maxSubscribersPerSubject.map { .int($0) })
        set("max-streams-per-subscription", maxStreamsPerSubscription.map { .int($0) })
        set("max-header-bytes", maxHeaderBytes.map { .int($0) })
        set("idle-timeout", idleTimeout.map { .string($0) })
        set("tls-cert", tlsCert.map { .string($0) })
        set("tls-key", tlsKey.map { .string($0) })
        set("trusted-proxy", trustedProxies.isEmpty ? nil : .stringArray(trustedProxies))
        set("node-name", nodeName.map { .string($0) })
        set("log-level", logLevel.map { .string($0.rawValue) })
        set("log-format", logFormat.map { .string($0.rawValue) })
        return flags
    }

    func run() async throws {
        let settings = try ServeSettings(flags: flags, file: config, environment: ProcessInfo.processInfo.environment)
        if printConfig {
            Terminal.print(settings.printed())
            return
        }
        let resolved = try ResolvedServe(settings)
        var logger = RewindLogging.start(level: resolved.logLevel, format: resolved.logFormat)
        // Every line says which node wrote it, so the logs of several nodes can be read together.
        logger[metadataKey: "node"] = "\(resolved.configuration.nodeName)"
        let app = try await buildApplication(configuration: resolved.configuration, logger: logger)
        try await app.runService()
    }
}

extension Durability: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
extension LogFormat: ExpressibleByArgument {}
