import Hummingbird

/// The context every request runs with: Hummingbird's own, and what the request may do.
///
/// `AuthMiddleware`, in front of the `/v1` routes, resolves the request's token once and records its access here;
/// the handlers ask the context which streams and actions are allowed instead of reading the token themselves.
struct RewindRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    /// What the request may do. Nothing until `AuthMiddleware` has run, so a route registered outside its group
    /// that asks is refused rather than let through.
    var access = Access.nothing

    init(source: Source) {
        coreContext = CoreRequestContextStorage(source: source)
    }
}
