import HTTPTypes
import Hummingbird

/// CORS for a list of allowed origins (`--cors-origin`, repeatable; `*` allows any origin).
///
/// Hummingbird's `CORSMiddleware` answers preflights and adds the headers; it takes a fixed set of origins only
/// as variadic arguments, so this keeps one per allowed origin and hands each request to the one for its
/// `Origin`. Requests from other origins get no CORS headers, which makes the browser refuse the response.
struct CORSAllowList<Context: RequestContext>: RouterMiddleware {
    private let anyOrigin: CORSMiddleware<Context>?
    private let byOrigin: [String: CORSMiddleware<Context>]

    init(origins: [String]) {
        let allowHeaders: [HTTPField.Name] = [.accept, .authorization, .contentType, .origin, .lastEventID, .idempotencyKey, .cacheControl]
        let exposed = ["Location", "Rewind-Head", "Idempotent-Replayed", "Retry-After", "WWW-Authenticate"]
        let methods: [HTTPRequest.Method] = [.get, .post, .delete, .head, .options]
        if origins.contains("*") {
            anyOrigin = CORSMiddleware(
                allowOrigin: .all,
                allowHeaders: allowHeaders,
                allowMethods: methods,
                exposedHeaders: exposed,
                maxAge: .seconds(600)
            )
            byOrigin = [:]
        } else {
            anyOrigin = nil
            byOrigin = Dictionary(
                origins.map { origin in
                    (
                        origin,
                        CORSMiddleware(
                            allowOrigin: .oneOf(origin),
                            allowHeaders: allowHeaders,
                            allowMethods: methods,
                            allowCredentials: true,
                            exposedHeaders: exposed,
                            maxAge: .seconds(600)
                        )
                    )
                },
                uniquingKeysWith: { first, _ in first }
            )
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let anyOrigin { return try await anyOrigin.handle(request, context: context, next: next) }
        if let origin = request.headers[.origin], let cors = byOrigin[origin] {
            return try await cors.handle(request, context: context, next: next)
        }
        return try await next(request, context)
    }
}
