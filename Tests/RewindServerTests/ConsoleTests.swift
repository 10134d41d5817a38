import Foundation
import NIOHTTP1
import RewindServer
import Testing

@Suite("Web console files")
struct ConsoleTests {
    @Test(arguments: [
        ("/", "text/html; charset=utf-8", "<title>Rewind console</title>"),
        ("/console/tail.js", "text/javascript; charset=utf-8", "EventSource"),
        ("/console/app.js", "text/javascript; charset=utf-8", "import "),
        ("/console/style.css", "text/css; charset=utf-8", ":root"),
        ("/console/favicon.svg", "image/svg+xml", "<svg"),
        ("/console/overview.js", "text/javascript; charset=utf-8", "/metrics"),
        ("/console/metrics.js", "text/javascript; charset=utf-8", "export function parsePrometheus"),
        ("/console/chart.js", "text/javascript; charset=utf-8", "export function drawChart"),
    ])
    func servesEachFileWithItsType(path: String, contentType: String, sample: String) async throws {
        try await withRewind { server in
            let reply = try await server.request(.GET, path)
            #expect(reply.status == 200)
            #expect(reply.headers["Content-Type"].first == contentType)
            #expect(reply.headers["X-Content-Type-Options"].first == "nosniff")
            #expect(reply.headers["Cache-Control"].first == "no-cache")
            #expect(reply.body.contains(sample))
            let etag = try #require(reply.headers["ETag"].first)
            #expect(etag.hasPrefix("\"") && etag.hasSuffix("\"") && etag.count > 2)
            let again = try await server.request(.GET, path, headers: [("If-None-Match", etag)])
            #expect(again.status == 304, "the browser's copy is still good")
            #expect(again.body.isEmpty)
        }
    }

    @Test func servedWithoutATokenWhenAuthIsOn() async throws {
        try await withRewind({ $0.auth = .secret(AuthTests.secret) }) { server in
            for path in ["/", "/console/app.js", "/console/style.css", "/console/favicon.svg"] {
                let reply = try await server.request(.GET, path)
                #expect(reply.status == 200, "\(path): the page is what asks for the token")
            }
            let api = try await server.request(.GET, "/v1/streams")
            #expect(api.status == 401, "the API still needs one")
        }
    }

    @Test func pageRestrictsWhatItLoads() async throws {
        try await withRewind { server in
            let reply = try await server.request(.GET, "/")
            let policy = try #require(reply.headers["Content-Security-Policy"].first)
            #expect(policy.contains("default-src 'self'"))
            #expect(policy.contains("frame-ancestors 'none'"))
        }
    }

    @Test(arguments: ["/console/nope.js", "/console/", "/console/../Package.swift", "/index.html"])
    func unknownFileIsNotFound(path: String) async throws {
        try await withRewind { server in
            let reply = try await server.request(.GET, path)
            #expect(reply.status == 404)
            #expect(reply.headers["Content-Type"].first == "application/problem+json")
            #expect(reply.object["status"] as? Int == 404)
        }
    }
}
