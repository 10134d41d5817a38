import Hummingbird

/// Resolves the request's identity once, before its handler runs: the access its token grants (everything with
/// auth off) goes into the context, and a missing or invalid token is refused here with 401 (`AuthError`), so no
/// route behind this middleware can forget to check.
struct AuthMiddleware: RouterMiddleware {
    let authenticator: Authenticator

    func handle(
        _ request: Request,
        context: RewindRequestContext,
        next: (Request, RewindRequestContext) async throws -> Response
    ) async throws -> Response {
        var context = context
        context.access = try await authenticator.access(for: request)
        return try await next(request, context)
    }
}
