public import ArgumentParser
import Foundation
import Hummingbird
public import Logging
import RewindCore
import RewindServer
public import RewindStore

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the Rewind server.",
        discussion: """
            Creates and migrates the database on first start. Stops gracefully on SIGTERM or SIGINT: in-flight
            publishes commit, SSE streams end cleanly so clients reconnect with their Last-Event-ID.

            Example:
              rewind serve --db /var/lib/rewind/log.sqlite --port 8080
            """
    )

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on.")
    var port = 8080

    @Option(help: "SQLite database file, created on first start (default: $REWIND_DB, else ./rewind.sqlite).")
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

    @Option(help: "Largest publish request body, in bytes.")
    var maxBodyBytes = 32 << 20

    @Option(help: "Remove events older than this from every stream (e.g. 30d, 12h, 90m).")
    var retentionMaxAge: String?

    @Option(help: "Keep at most this many events of every stream.")
    var retentionMaxEvents: Int64?

    @Option(
        name: .customLong("stream-retention"),
        help: "Retention for streams matching a name or pattern, overriding the defaults (repeatable): 'orders.*:max-age=7d,max-events=1000'."
    )
    var streamRetention: [String] = []

    @Option(help: "How often retention is applied (e.g. 60s).")
    var maintenanceInterval = "60s"

    @Option(help: "Recent events held in memory to serve caught-up subscribers.")
    var windowEvents = 16_384

    @Option(help: "Most bytes of encoded frames held in that window.")
    var windowBytes = 32 << 20

    @Option(name: .customLong("cors-origin"), help: "Origin allowed to call the API from a browser (repeatable; * for any).")
    var corsOrigins: [String] = []

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        _ = try retentionPolicy()
        guard DurationText.parse(maintenanceInterval).map({ $0 > .zero }) == true else {
            throw ValidationError("--maintenance-interval '\(maintenanceInterval)' is not a duration such as 60s")
        }
        guard windowEvents > 0, windowBytes > 0 else { throw ValidationError("--window-events and --window-bytes must be positive") }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0-65535") }
        guard heartbeat > 0 else { throw ValidationError("--heartbeat must be a positive number of seconds") }
        guard retry >= 0 else { throw ValidationError("--retry must be zero or more milliseconds") }
        guard maxEventBytes > 0, maxBatchEvents > 0, maxBodyBytes > 0 else {
            throw ValidationError("--max-event-bytes, --max-batch-events and --max-body-bytes must be positive")
        }
    }

    func run() async throws {
        var logger = Logger(label: "rewind")
        logger.logLevel = logLevel
        let configuration = RewindConfiguration(
            host: host,
            port: port,
            store: StoreConfiguration(path: db, durability: durability),
            heartbeat: .milliseconds(Int64(heartbeat * 1000)),
            retryMilliseconds: retry,
            publishLimits: PublishLimits(maxEventBytes: maxEventBytes, maxBatchEvents: maxBatchEvents),
            maxBodyBytes: maxBodyBytes,
            corsOrigins: corsOrigins,
            retention: try retentionPolicy(),
            maintenanceInterval: DurationText.parse(maintenanceInterval)!,
            windowEvents: windowEvents,
            windowBytes: windowBytes
        )
        let app = try buildApplication(configuration: configuration, logger: logger)
        try await app.runService()
    }
}

extension Serve {
    /// The retention flags as a policy; throws a usage error naming the flag at fault.
    func retentionPolicy() throws -> RetentionPolicy {
        try makeRetentionPolicy(maxAge: retentionMaxAge, maxEvents: retentionMaxEvents, streamRules: streamRetention)
    }
}

extension Durability: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}
