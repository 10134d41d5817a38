import Hummingbird
import NIOCore

/// The context every request runs with: Hummingbird's own, and what the request may do.
///
/// `AuthMiddleware`, in front of the `/v1` routes, resolves the request's token once and records its access here;
/// the handlers ask the context which streams and actions are allowed instead of reading the token themselves.
struct RewindRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// What the request may do. Nothing until `AuthMiddleware` has run, so a route registered outside its group
    /// that asks is refused rather than let through.
    var access = Access.nothing
    /// The connection (an HTTP/1.1 connection, or an HTTP/2 stream) the request came on: caught-up SSE subscribers
    /// are written to it from its event loop.
    let channel: any Channel

    init(source: Source) {
        coreContext = CoreRequestContextStorage(source: source)
        channel = source.channel
    }
}
