import Foundation
import NIOHTTP1
import RewindServer
import Testing

/// Keeps `openapi.yaml` true: it documents exactly the routes the server registers, each documented operation is
/// answered by a route (not the unknown-route 404), and the server hands out the file itself.
@Suite struct OpenAPITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `METHOD /path/{param}` for every operation under `paths:`.
    static func documentedOperations() throws -> Set<String> {
        let text = try String(contentsOf: root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        var operations: Set<String> = []
        var path: String?
        var inPaths = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.isEmpty { inPaths = line == "paths:" }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let method = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "post", "put", "patch", "delete", "head", "options"].contains(String(method)) {
                    operations.insert("\(method.uppercased()) \(path)")
                }
            }
        }
        return operations
    }

    /// `METHOD /path/{param}` for every `router.get("/path/:param")`-style registration in the server's sources; a
    /// catch-all `**` is documented as `{path}`.
    static func registeredOperations() throws -> Set<String> {
        let sources = root.appendingPathComponent("Sources/RewindServer")
        let pattern = try NSRegularExpression(pattern: #"router\.(get|post|put|patch|delete|head)\("([^"]*)""#)
        var operations: Set<String> = []
        for case let file as URL in FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)! where file.pathExtension == "swift"
        {
            let text = try String(contentsOf: file, encoding: .utf8)
            for match in pattern.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                let method = String(text[Range(match.range(at: 1), in: text)!]).uppercased()
                let path = String(text[Range(match.range(at: 2), in: text)!])
                    .split(separator: "/", omittingEmptySubsequences: false)
                    .map { $0.hasPrefix(":") ? "{\($0.dropFirst())}" : $0 == "**" ? "{path}" : String($0) }
                    .joined(separator: "/")
                operations.insert("\(method) \(path.isEmpty ? "/" : path)")
            }
        }
        return operations
    }

    @Test func documentsExactlyTheRegisteredRoutes() throws {
        let documented = try Self.documentedOperations()
        let registered = try Self.registeredOperations()
        #expect(registered.count >= 10, "the scan found the routes: \(registered.sorted())")
        #expect(registered.subtracting(documented).isEmpty, "registered but not in openapi.yaml: \(registered.subtracting(documented).sorted())")
        #expect(documented.subtracting(registered).isEmpty, "in openapi.yaml but not registered: \(documented.subtracting(registered).sorted())")
    }

    @Test func everyDocumentedOperationIsAnswered() async throws {
        let documented = try Self.documentedOperations()
        try await withRewind { server in
            _ = try await server.publishTexts("doc", ["x"])
            // The deletion goes last: it takes the stream the others read.
            for operation in documented.sorted(by: { ($0.hasPrefix("DELETE") ? "1" : "0") + $0 < ($1.hasPrefix("DELETE") ? "1" : "0") + $1 }) {
                let parts = operation.split(separator: " ", maxSplits: 1)
                let path = String(parts[1]).replacingOccurrences(of: "{stream}", with: "doc").replacingOccurrences(of: "{id}", with: "1")
                    .replacingOccurrences(of: "{path}", with: "app.js")
                let method = HTTPMethod(rawValue: String(parts[0]))
                let reply = try await server.request(
                    method,
                    path + (path == "/v1/events" ? "?stream=doc" : ""),
                    headers: [("Accept", "application/json"), ("Content-Type", "application/json")],
                    body: method != .POST ? nil : path == "/v1/events" ? Array(#"{"streams": ["doc"]}"#.utf8) : Array(#"{"data": 1}"#.utf8)
                )
                #expect(reply.status < 400, "\(operation) answered \(reply.status): \(reply.body.prefix(200))")
            }
        }
    }

    /// A method a path does not have is 405 with `Allow` naming the path's methods, as problem+json; an unknown
    /// path stays 404; CORS preflights are still answered by the CORS middleware.
    @Test func aMethodThePathLacksIs405WithAllow() async throws {
        try await withRewind({ $0.corsOrigins = ["https://app.example"] }) { server in
            let cases: [(NIOHTTP1.HTTPMethod, String, String)] = [
                (.PUT, "/v1/events", "GET, POST"),
                (.PATCH, "/v1/streams/orders", "GET, DELETE"),
                (.DELETE, "/v1/streams/orders/events", "POST, GET"),
                (.POST, "/v1/streams/orders/events/7", "GET"),
                (.HEAD, "/healthz", "GET"),
                (.RAW(value: "TRACE"), "/console/app.js", "GET"),
                (.OPTIONS, "/v1/streams", "GET"),
            ]
            for (method, path, allow) in cases {
                let reply = try await server.request(method, path)
                #expect(reply.status == 405, "\(method) \(path)")
                #expect(reply.headers.first(name: "Allow") == allow, "\(method) \(path)")
                if method != .HEAD {
                    #expect(reply.headers.first(name: "Content-Type") == "application/problem+json")
                    #expect(reply.object["field"] as? String == "method", "\(method) \(path): \(reply.body)")
                }
            }
            let unknown = try await server.request(.PUT, "/v1/nothing/here")
            #expect(unknown.status == 404)
            #expect(unknown.object["field"] as? String == "path")
            #expect(try await server.request(.GET, "/v1/streams/a/events/1/more").status == 404)
            let preflight = try await server.request(
                .OPTIONS,
                "/v1/events",
                headers: [("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST")]
            )
            #expect(preflight.status < 300)
            #expect(preflight.headers.first(name: "Access-Control-Allow-Origin") == "https://app.example")
        }
    }

    /// What openapi.yaml promises of parameters holds whichever form answers: a parameter the answer does not use
    /// is still checked, and a percent-encoded stream name is the name.
    @Test func everyParameterIsCheckedAndPathsAreDecoded() async throws {
        try await withRewind { server in
            let ids = try await server.publishTexts("a:b", ["x"])
            let show = try await server.request(.GET, "/v1/streams/a%3Ab")
            #expect(show.status == 200)
            #expect(show.object["name"] as? String == "a:b")
            let event = try await server.request(.GET, "/v1/streams/a%3ab/events/\(ids[0])")
            #expect(event.status == 200)
            let refused: [(String, [(String, String)], String)] = [
                ("wait=61", [("Accept", "text/event-stream")], "wait"),
                ("live=maybe", [("Accept", "application/json")], "live"),
                ("after=x", [("Accept", "text/event-stream"), ("Last-Event-ID", "1")], "after"),
                ("from=now", [("Accept", "text/event-stream"), ("Last-Event-ID", "1")], "from"),
                ("since=soon&after=1", [("Accept", "text/event-stream")], "since"),
                ("until=later", [("Accept", "text/event-stream")], "until"),
            ]
            for (query, headers, field) in refused {
                let reply = try await server.request(.GET, "/v1/events?stream=a:b&\(query)&live=false", headers: headers)
                #expect(reply.status == 400, "\(query)")
                #expect(reply.object["field"] as? String == field, "\(query): \(reply.body)")
            }
        }
    }

    @Test func theServerHandsOutTheFile() async throws {
        let file = try String(contentsOf: Self.root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        try await withRewind { server in
            let reply = try await server.request(.GET, "/openapi.yaml")
            #expect(reply.status == 200)
            #expect(reply.headers.first(name: "Content-Type")?.hasPrefix("application/yaml") == true)
            #expect(reply.body == file)
        }
    }
}
