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
        let methods: [HTTPRequest.Method] = [.get, .post, .delete, .head, .options]
        if origins.contains("*") {
            anyOrigin = CORSMiddleware(
                allowOrigin: .all,
                allowHeaders: allowHeaders,
                allowMethods: methods,
                exposedHeaders: [Self.exposed],
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
                            exposedHeaders: [Self.exposed],
                            maxAge: .seconds(600)
                        )
                    )
                },
                uniquingKeysWith: { first, _ in first }
            )
        }
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let cors = anyOrigin ?? request.headers[.origin].flatMap({ byOrigin[$0] }) else {
            return try await next(request, context)
        }
        guard request.method != .options, request.headers[.origin] != nil else {
            return try await cors.handle(request, context: context, next: next)
        }
        // Hummingbird sends Access-Control-Expose-Headers with preflights only; browsers read it from the actual
        // response, which is where it is needed for a page to see Location, Rewind-Head or a 401's challenge.
        var response: Response
        do {
            response = try await cors.handle(request, context: context, next: next)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[.accessControlExposeHeaders] = Self.exposed
        return response
    }

    private static var exposed: String { "Location, Rewind-Head, Idempotent-Replayed, Retry-After, WWW-Authenticate" }
}
