import HTTPTypes
import Hummingbird

/// Registers routes on a router and keeps each path's methods, which Hummingbird's router does not tell: it answers
/// a known path with an unknown method with the same 404 as an unknown path. `MethodNotAllowedMiddleware` uses the
/// list to answer those requests 405 with `Allow` (RFC 9110 §15.5.6).
final class RouteRecorder<Context: RequestContext>: RouterMethods {
    let router: Router<Context>
    /// Every registered path with its methods, in registration order.
    private(set) var routes: [(path: RouterPath, methods: [HTTPRequest.Method])] = []

    init(_ router: Router<Context>) {
        self.router = router
    }

    @discardableResult func on<Responder: HTTPResponder>(
        _ path: RouterPath,
        method: HTTPRequest.Method,
        responder: Responder
    ) -> Self where Responder.Context == Context {
        router.on(path, method: method, responder: responder)
        if let index = routes.firstIndex(where: { $0.path == path }) {
            routes[index].methods.append(method)
        } else {
            routes.append((path, [method]))
        }
        return self
    }

    @discardableResult func add(middleware: any MiddlewareProtocol<Request, Response, Context>) -> Self {
        router.add(middleware: middleware)
        return self
    }

    /// The middleware that answers 405 for these routes; add it to the router after the last route, so that it
    /// wraps only the router's not-found answer.
    func methodNotAllowed() -> MethodNotAllowedMiddleware<Context> {
        MethodNotAllowedMiddleware(routes: routes.map { ($0.path.components, $0.methods) })
    }
}

/// Turns the router's 404 for a path that exists into 405 with `Allow` listing the path's methods, as
/// problem+json. Added after every route, it runs only where the router found no route for the request's
/// method and path (Hummingbird applies a middleware to the routes added after it and to the not-found answer).
/// CORS preflights never reach it: the CORS middleware, added first, answers them.
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let routes: [(components: [RouterPath.Element], methods: [HTTPRequest.Method])]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let methods = allowedMethods(path: request.uri.path)
            guard !methods.isEmpty else { throw error }
            let allow = methods.map(\.rawValue).joined(separator: ", ")
            throw Problem(
                .methodNotAllowed,
                "method \(request.method) is not allowed on \(request.uri.path.prefix(200)); this path takes \(allow)",
                field: "method",
                headers: [.allow: allow]
            )
        }
    }

    /// The methods of every route whose pattern matches the path, segment by segment as the router splits it
    /// (empty segments skipped); `**` matches one or more trailing segments.
    func allowedMethods(path: String) -> [HTTPRequest.Method] {
        let segments = path.split(separator: "/")
        var methods: [HTTPRequest.Method] = []
        for route in routes where Self.matches(route.components, segments) {
            for method in route.methods where !methods.contains(method) { methods.append(method) }
        }
        return methods
    }

    static func matches(_ components: [RouterPath.Element], _ segments: [Substring]) -> Bool {
        for (index, component) in components.enumerated() {
            if component == RouterPath.Element.recursiveWildcard { return segments.count > index }
            guard index < segments.count, component ~= segments[index] else { return false }
        }
        return components.count == segments.count
    }
}
