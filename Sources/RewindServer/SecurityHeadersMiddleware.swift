import HTTPTypes
import Hummingbird

/// Headers every response carries: `X-Content-Type-Options: nosniff`, so a browser never runs stored data as
/// another type, and `Cache-Control: no-store` unless the response chose its own caching (SSE says `no-cache`),
/// so no shared cache keeps what a token was allowed to read.
struct SecurityHeadersMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response: Response
        do {
            response = try await next(request, context)
        } catch let error as any HTTPResponseError {
            response = try error.response(from: request, context: context)
        }
        response.headers[.xContentTypeOptions] = "nosniff"
        if response.headers[.cacheControl] == nil {
            response.headers[.cacheControl] = "no-store"
        }
        return response
    }
}

extension HTTPField.Name {
    static let xContentTypeOptions = Self("X-Content-Type-Options")!
}
