public import Hummingbird
public import Logging
import RewindStore

/// Builds the Rewind server: opens (and migrates) the log, wires the routes and the background services.
/// `rewind serve` runs what this returns; the tests run the same thing in-process.
public func buildApplication(configuration: RewindConfiguration, logger: Logger) throws -> some ApplicationProtocol {
    let metrics = ServerMetrics()
    let log = try EventLog(configuration: configuration.store, logger: logger, metrics: metrics.factory)
    let recent = RecentEvents(head: log.commits.head, maxEvents: configuration.windowEvents, maxBytes: configuration.windowBytes)
    log.onCommit { previousHead, events in recent.append(previousHead: previousHead, events: events) }
    let router = Router(context: BasicRequestContext.self)
    router.add(middleware: RequestLogMiddleware())
    if !configuration.corsOrigins.isEmpty {
        router.add(middleware: CORSAllowList(origins: configuration.corsOrigins))
    }
    router.add(middleware: ProblemMiddleware())
    RewindAPI(log: log, recent: recent, metrics: metrics, configuration: configuration).addRoutes(to: router)
    Console.addRoutes(to: router)
    return Application(
        router: router,
        configuration: ApplicationConfiguration(
            address: .hostname(configuration.host, port: configuration.port),
            serverName: "rewind"
        ),
        services: [
            BackgroundChores.heartbeat(log.commits, every: configuration.heartbeat / 4),
            BackgroundChores.externalCommits(log, every: configuration.externalCommitPollInterval, logger: logger),
            BackgroundChores.maintenance(
                log,
                recent: recent,
                policy: configuration.retention,
                every: configuration.maintenanceInterval,
                logger: logger
            ),
        ],
        logger: logger
    )
}
