public import Hummingbird
import HummingbirdCore
import HummingbirdHTTP2
public import Logging
import NIOCore
import RewindStore

/// Builds the Rewind server: opens (and migrates) the log, wires the routes and the background services. The log is
/// the SQLite file `configuration.store` names unless `configuration.storeOpener` opens another; either way it runs
/// as the first of the application's services, so graceful shutdown closes it after the HTTP server has drained.
/// `rewind serve` runs what this returns; the tests run the same thing in-process.
///
/// Refuses configurations that would be unsafe: no auth on an address other than loopback, and CORS for any
/// origin together with auth (a page anywhere could then use a visitor's cookie).
public func buildApplication(configuration: RewindConfiguration, logger: Logger) async throws -> some ApplicationProtocol {
    try configuration.checkSecurity()
    var authenticator = Authenticator.off
    if let key = configuration.auth { authenticator = try await Authenticator(key: key) }
    let metrics = ServerMetrics(node: configuration.nodeName)
    let opener = configuration.storeOpener ?? .sqlite(configuration.store)
    let log = try await opener.open(logger: logger, metrics: metrics.factory)
    let recent = RecentEvents(head: log.commits.head, maxEvents: configuration.windowEvents, maxBytes: configuration.windowBytes)
    log.onCommit { previousHead, events in recent.append(previousHead: previousHead, events: events) }
    // Whatever process pruned or deleted, the window lets go of what the log no longer holds.
    log.commits.onHorizon { prunedThrough in recent.drop(through: prunedThrough) }
    let live = LiveSubscribers(recent: recent, hub: log.commits, metrics: metrics)
    log.commits.onChange { change in live.hubChanged(change) }
    let router = Router(context: RewindRequestContext.self)
    router.add(middleware: HTTP2ResponseHeadersMiddleware())
    router.add(middleware: RequestLogMiddleware())
    router.add(middleware: SecurityHeadersMiddleware())
    if !configuration.corsOrigins.isEmpty {
        router.add(middleware: CORSAllowList(origins: configuration.corsOrigins))
    }
    router.add(middleware: ProblemMiddleware())
    let routes = RouteRecorder(router)
    RewindAPI(
        log: log,
        recent: recent,
        live: live,
        metrics: metrics,
        configuration: configuration,
        authenticator: authenticator,
        quota: SubscriberQuota(maxTotal: configuration.maxSubscribers, maxPerSubject: configuration.maxSubscribersPerSubject)
    ).addRoutes(to: routes)
    Console.addRoutes(to: routes)
    // Last, so it wraps only the router's not-found answer.
    router.add(middleware: routes.methodNotAllowed())
    return Application(
        router: router,
        server: server(for: configuration),
        configuration: ApplicationConfiguration(
            address: .hostname(configuration.host, port: configuration.port),
            serverName: "rewind"
        ),
        services: [
            log,
            BackgroundChores.heartbeat(log.commits, every: configuration.heartbeat / 4),
            BackgroundChores.externalChanges(
                log,
                every: configuration.externalCommitPollInterval,
                whileListening: configuration.externalCommitPollWhileListening,
                logger: logger
            ),
            BackgroundChores.maintenance(
                log,
                policy: configuration.retention,
                every: configuration.maintenanceInterval,
                logger: logger
            ),
            HangupReloader(certificates: configuration.tls, logger: logger),
        ],
        logger: logger
    )
}

/// Plain HTTP/1.1, or with a certificate, TLS with HTTP/2 or HTTP/1.1 as the client's ALPN chooses. Either way each
/// request runs with its `RequestOrigin` set, and each connection's task on its channel's event loop.
func server(for configuration: RewindConfiguration) -> HTTPServerBuilder {
    let idle = configuration.idleTimeout.components
    let http1 = HTTP1Channel.Configuration(
        idleTimeout: TimeAmount.nanoseconds(idle.seconds * 1_000_000_000 + idle.attoseconds / 1_000_000_000),
        httpDecoderConfiguration: HTTP1Channel.Configuration.DecoderConfiguration(
            maxHeaderFieldSize: configuration.maxHeaderBytes,
            maxHeaderListSize: configuration.maxHeaderBytes
        )
    )
    let trustedProxies = configuration.trustedProxies
    guard let certificates = configuration.tls else {
        return HTTPServerBuilder { responder in
            EventLoopBoundChannel(
                base: HTTP1Channel(
                    responder: RequestOrigin.responder(responder, trustedProxies: trustedProxies),
                    configuration: http1
                )
            )
        }
    }
    return HTTPServerBuilder { responder in
        EventLoopBoundChannel(
            base: try HTTP2UpgradeChannel(
                tlsConfiguration: certificates.serverConfiguration(),
                // An HTTP/2 connection is idle once it has no open stream.
                configuration: HTTP2UpgradeChannel.Configuration(idleTimeout: configuration.idleTimeout, streamConfiguration: http1),
                responder: RequestOrigin.responder(responder, trustedProxies: trustedProxies)
            )
        )
    }
}
