import Hummingbird

/// The web console: `GET /` is its page, `GET /console/{path}` its scripts, styles and icons, all embedded in the
/// binary. None of them needs a token, since the page is what asks for one; the page's calls go to `/v1` like any
/// other client's.
enum Console {
    static func addRoutes(to router: some RouterMethods<RewindRequestContext>) {
        router.get("/") { request, _ in
            try asset("index.html").response(to: request)
        }
        router.get("/openapi.yaml") { request, _ in
            try asset("openapi.yaml").response(to: request)
        }
        router.get("/console/**") { request, context in
            try asset(context.parameters.getCatchAll().joined(separator: "/")).response(to: request)
        }
    }

    private static func asset(_ path: String) throws -> ConsoleAsset {
        guard let asset = ConsoleAsset.byPath[path] else {
            throw Problem(.notFound, "the console has no file \(path.prefix(200))", field: "path")
        }
        return asset
    }
}
