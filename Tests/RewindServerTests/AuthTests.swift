import Foundation
import Logging
import NIOHTTP1
import RewindCore
import RewindServer
import RewindStore
import Synchronization
import Testing

/// SPEC §3, row by row: token sources, scopes, expiry, 401 and 403, refusing to start open, and keeping tokens out
/// of the logs.
@Suite struct AuthTests {
    static let secret = "test-secret-0123456789-abcdefghijklmnop"

    static func token(
        publish: [String]? = nil,
        subscribe: [String]? = nil,
        admin: Bool? = nil,
        subject: String? = nil,
        expiresIn: TimeInterval = 3600,
        key: TokenKey = .secret(secret)
    ) async throws -> String {
        try await TokenMinter.sign(
            AccessClaims(
                subject: subject,
                expires: Date().addingTimeInterval(expiresIn),
                scopes: .init(publish: publish, subscribe: subscribe, admin: admin)
            ),
            with: key
        )
    }

    static func withAuth(
        key: TokenKey = .secret(secret),
        logger: Logger? = nil,
        _ configure: @escaping (inout RewindConfiguration) -> Void = { _ in },
        _ body: @escaping @Sendable (TestServer) async throws -> Void
    ) async throws {
        try await withRewind(
            logger: logger,
            {
                $0.auth = key
                configure(&$0)
            },
            body
        )
    }

    static func keyFile(_ name: String) throws -> String {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Keys/\(name)")
        return try String(contentsOf: url, encoding: .utf8)
    }

    @Test func aRequestWithoutATokenIs401WithAChallenge() async throws {
        try await Self.withAuth { server in
            for (method, path) in [("POST", "/v1/streams/orders/events"), ("GET", "/v1/streams/orders/events"), ("GET", "/v1/streams")] {
                let reply =
                    method == "POST"
                    ? try await server.publish("orders", #"{"data": 1}"#)
                    : try await server.request(.GET, path, headers: [("Accept", "application/json")])
                #expect(reply.status == 401, "\(method) \(path)")
                #expect(reply.headers.first(name: "WWW-Authenticate") == #"Bearer realm="rewind""#)
                #expect(reply.headers.first(name: "Content-Type") == "application/problem+json")
                #expect((reply.object["detail"] as? String)?.contains("token is required") == true)
            }
            // Health, readiness and metrics stay open for probes and scrapers.
            for path in ["/healthz", "/readyz", "/metrics"] {
                #expect(try await server.request(.GET, path).status == 200, "\(path)")
            }
        }
    }

    /// Every `/v1` route is behind the authenticator, not only the ones above; what is no route stays the 404 or 405
    /// it is without auth, and the console's page needs no token (it is what asks for one).
    @Test func everyAPIRouteNeedsATokenAndNothingElseDoes() async throws {
        try await Self.withAuth { server in
            let routes: [(NIOHTTP1.HTTPMethod, String)] = [
                (.GET, "/v1/streams/orders"), (.DELETE, "/v1/streams/orders"), (.GET, "/v1/streams/orders/events/1"),
                (.GET, "/v1/events?stream=orders"), (.POST, "/v1/events"),
            ]
            for (method, path) in routes {
                let reply = try await server.request(method, path, headers: [("Accept", "application/json")])
                #expect(reply.status == 401, "\(method) \(path): \(reply.body)")
                #expect(reply.headers.first(name: "WWW-Authenticate") == #"Bearer realm="rewind""#, "\(method) \(path)")
            }
            #expect(try await server.request(.GET, "/v1/nothing").status == 404)
            #expect(try await server.request(.PUT, "/v1/streams/orders").status == 405)
            #expect(try await server.request(.GET, "/").status == 200)
        }
    }

    @Test func eachTokenSourceIsAccepted() async throws {
        try await Self.withAuth { server in
            let token = try await Self.token(publish: ["orders"], subscribe: ["orders"])
            #expect(try await server.publish("orders", #"{"data": 1}"#, headers: [("Authorization", "Bearer \(token)")]).status == 201)
            #expect(try await server.publish("orders", #"{"data": 2}"#, headers: [("Cookie", "theme=dark; rewind_token=\(token)")]).status == 201)
            #expect(try await server.publish("orders", #"{"data": 3}"#, query: "?access_token=\(token)").status == 201)
            let stream = try await server.sse("/v1/streams/orders/events?from=earliest&live=false&access_token=\(token)")
            #expect(stream.status == 200)
            #expect(stream.ids == [1, 2, 3])
        }
    }

    @Test func theFirstSourcePresentWinsEvenWhenItIsBad() async throws {
        try await Self.withAuth { server in
            let good = try await Self.token(publish: ["orders"])
            let headerWins = try await server.publish(
                "orders",
                #"{"data": 1}"#,
                headers: [("Authorization", "Bearer not-a-token"), ("Cookie", "rewind_token=\(good)")]
            )
            #expect(headerWins.status == 401)
            let cookieWins = try await server.publish(
                "orders",
                #"{"data": 1}"#,
                headers: [("Cookie", "rewind_token=not-a-token")],
                query: "?access_token=\(good)"
            )
            #expect(cookieWins.status == 401)
            let basic = try await server.publish("orders", #"{"data": 1}"#, headers: [("Authorization", "Basic dXNlcjpwYXNz")])
            #expect(basic.status == 401)
            #expect((basic.object["detail"] as? String)?.contains("Bearer") == true)
        }
    }

    @Test func invalidTokensAre401() async throws {
        try await Self.withAuth { server in
            let otherKey = try await Self.token(publish: ["*"], key: .secret("another-secret-that-is-long-enough-0123456789"))
            let expired = try await Self.token(publish: ["*"], expiresIn: -60)
            // An unsigned token claiming alg "none" with every scope.
            func base64url(_ text: String) -> String {
                Data(text.utf8).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                    .replacingOccurrences(of: "=", with: "")
            }
            let unsigned = base64url(#"{"alg":"none","typ":"JWT"}"#) + "." + base64url(#"{"rewind":{"admin":true}}"#) + "."
            // A signed token whose scopes are not a valid pattern.
            let badPattern = try await Self.token(publish: ["orders.**"])
            let cases: [(String, String)] = [
                (otherKey, "signature"), (expired, "expired"), (unsigned, "invalid token"), ("abc", "well-formed"), (badPattern, "rewind.publish"),
            ]
            for (token, reason) in cases {
                let reply = try await server.publish("orders", #"{"data": 1}"#, headers: [("Authorization", "Bearer \(token)")])
                #expect(reply.status == 401, "\(reason)")
                #expect((reply.object["detail"] as? String)?.contains(reason) == true, "\(reason): \(reply.body)")
                #expect(reply.headers.first(name: "WWW-Authenticate")?.contains(#"error="invalid_token""#) == true)
            }
            let history = try await server.request(
                .GET,
                "/v1/streams/orders/events",
                headers: [("Accept", "application/json"), ("Authorization", "Bearer \(try await Self.token(subscribe: ["*"]))")]
            )
            #expect((history.object["events"] as? [Any])?.isEmpty == true, "nothing was written by refused requests")
        }
    }

    /// The problem names where the refused token was found, as `field` and in its detail.
    @Test func invalidTokenProblemNamesItsSource() async throws {
        try await Self.withAuth { server in
            let sources: [(String, [(String, String)], String)] = [
                ("Authorization", [("Authorization", "Bearer abc")], ""),
                ("rewind_token", [("Cookie", "theme=dark; rewind_token=abc")], ""),
                ("access_token", [], "&access_token=abc"),
            ]
            for (field, headers, query) in sources {
                let reply = try await server.request(.GET, "/v1/streams/orders/events?live=false" + query, headers: headers)
                #expect(reply.status == 401)
                #expect(reply.object["field"] as? String == field, "\(reply.body)")
                #expect((reply.object["detail"] as? String)?.contains(field) == true, "\(reply.body)")
            }
        }
    }

    @Test(arguments: [
        // (grant, stream, allowed)
        (["orders"], "orders", true),
        (["orders"], "orders.eu", false),
        (["orders.*"], "orders.eu", true),
        (["orders.*"], "orders.eu.north", true),
        (["orders.*"], "orders", false),
        (["ord*"], "orders", true),
        (["*"], "anything", true),
        (["billing", "orders.*"], "billing", true),
    ])
    func publishScopesFollowThePatterns(grant: [String], stream: String, allowed: Bool) async throws {
        try await Self.withAuth { server in
            let token = try await Self.token(publish: grant)
            let reply = try await server.publish(stream, #"{"data": 1}"#, headers: [("Authorization", "Bearer \(token)")])
            #expect(reply.status == (allowed ? 201 : 403), "\(grant) publishing to \(stream): \(reply.body)")
            if !allowed {
                #expect(reply.headers.first(name: "WWW-Authenticate")?.contains(#"error="insufficient_scope""#) == true)
            }
        }
    }

    @Test func aMultiStreamSubscriptionNeedsScopeForEveryStreamItNames() async throws {
        try await Self.withAuth { server in
            let admin = try await Self.token(admin: true)
            for stream in ["orders.eu", "billing"] {
                #expect(try await server.publish(stream, #"{"data": 1}"#, headers: [("Authorization", "Bearer \(admin)")]).status == 201)
            }
            let token = try await Self.token(subscribe: ["orders.*"])
            let auth = [("Authorization", "Bearer \(token)")]
            let ok = try await server.sse("/v1/events?stream=orders.*&from=earliest&live=false", headers: auth)
            #expect(ok.status == 200 && ok.ids == [1])
            let narrower = try await server.sse("/v1/events?stream=orders.eu.*&stream=orders.us&from=earliest&live=false", headers: auth)
            #expect(narrower.status == 200)
            for (query, denied) in [("stream=orders.eu&stream=billing", "billing"), ("stream=*", "*"), ("stream=orders*", "orders*")] {
                let reply = try await server.request(.GET, "/v1/events?\(query)&from=earliest&live=false", headers: auth)
                #expect(reply.status == 403, "\(query)")
                #expect((reply.object["detail"] as? String)?.hasSuffix("may not read \(denied)") == true, "\(reply.body)")
            }
            // The JSON read, one event, and the stream's details follow the same scope.
            let headers = auth + [("Accept", "application/json")]
            #expect(try await server.request(.GET, "/v1/streams/billing/events", headers: headers).status == 403)
            #expect(try await server.request(.GET, "/v1/streams/billing/events/2", headers: headers).status == 403)
            #expect(try await server.request(.GET, "/v1/streams/billing", headers: headers).status == 403)
            #expect(try await server.request(.GET, "/v1/streams/orders.eu/events/1", headers: headers).status == 200)
            // The list shows only what the token may read.
            let list = try await server.request(.GET, "/v1/streams", headers: headers)
            #expect((list.json as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["orders.eu"])
        }
    }

    @Test func subscribeOnlyCannotPublishAndOnlyAdminDeletes() async throws {
        try await Self.withAuth { server in
            let reader = try await Self.token(subscribe: ["*"])
            let writer = try await Self.token(publish: ["*"], subscribe: ["*"])
            let admin = try await Self.token(admin: true)
            #expect(try await server.publish("orders", #"{"data": 1}"#, headers: [("Authorization", "Bearer \(reader)")]).status == 403)
            #expect(try await server.publish("orders", #"{"data": 1}"#, headers: [("Authorization", "Bearer \(writer)")]).status == 201)
            let denied = try await server.request(.DELETE, "/v1/streams/orders", headers: [("Authorization", "Bearer \(writer)")])
            #expect(denied.status == 403)
            #expect(denied.headers.first(name: "WWW-Authenticate")?.contains(#"scope="admin""#) == true)
            #expect(try await server.request(.DELETE, "/v1/streams/orders", headers: [("Authorization", "Bearer \(admin)")]).status == 204)
        }
    }

    @Test(arguments: ["rsa", "ec"])
    func publicKeyTokensVerify(kind: String) async throws {
        let publicKey = try Self.keyFile("\(kind)-public.pem")
        let privateKey = try Self.keyFile("\(kind)-private.pem")
        try await Self.withAuth(key: .publicKey(pem: publicKey)) { server in
            let good = try await Self.token(publish: ["orders"], key: .privateKey(pem: privateKey))
            #expect(try await server.publish("orders", #"{"data": 1}"#, headers: [("Authorization", "Bearer \(good)")]).status == 201)
            // An HS256 token made with the public key as its secret (algorithm confusion) is refused.
            let confused = try await Self.token(publish: ["orders"], key: .secret(publicKey))
            #expect(try await server.publish("orders", #"{"data": 1}"#, headers: [("Authorization", "Bearer \(confused)")]).status == 401)
        }
    }

    @Test func anOpenStreamEndsWhenItsTokenExpires() async throws {
        try await Self.withAuth({ $0.heartbeat = .milliseconds(200) }) { server in
            let admin = try await Self.token(admin: true)
            let shortLived = try await Self.token(subscribe: ["orders"], expiresIn: 2)
            #expect(try await server.publish("orders", #"{"data": 1}"#, headers: [("Authorization", "Bearer \(admin)")]).status == 201)
            let start = ContinuousClock.now
            let stream = try await server.sse("/v1/streams/orders/events?from=earliest&access_token=\(shortLived)", timeout: .seconds(15))
            let lasted = ContinuousClock.now - start
            #expect(stream.status == 200)
            #expect(stream.ids == [1])
            #expect(String(decoding: stream.raw, as: UTF8.self).hasSuffix(": token expired\n\n"))
            #expect(lasted >= .milliseconds(500) && lasted < .seconds(6), "the stream lasted \(lasted)")
            // Reconnecting with the same token is refused.
            let again = try await server.request(.GET, "/v1/streams/orders/events?access_token=\(shortLived)", headers: [("Last-Event-ID", "1")])
            #expect(again.status == 401)
        }
    }

    @Test func serverRefusesToStartOnANonLoopbackAddressWithoutAuth() async throws {
        for host in ["0.0.0.0", "192.0.2.10", "::"] {
            var configuration = RewindConfiguration(host: host, port: 0, store: StoreConfiguration(path: "/nonexistent/never-opened.sqlite"))
            await #expect(throws: InsecureConfigurationError.self, "\(host)") {
                _ = try await buildApplication(configuration: configuration, logger: Logger(label: "test"))
            }
            do {
                _ = try await buildApplication(configuration: configuration, logger: Logger(label: "test"))
            } catch let error as InsecureConfigurationError {
                #expect(error.description.contains("--jwt-secret"), "the message says how to fix it")
            }
            // With CORS for any origin and auth, it also refuses: a page anywhere could use a visitor's cookie.
            configuration.auth = .secret(Self.secret)
            configuration.corsOrigins = ["*"]
            await #expect(throws: InsecureConfigurationError.self) {
                _ = try await buildApplication(configuration: configuration, logger: Logger(label: "test"))
            }
        }
        for host in ["127.0.0.1", "localhost", "::1"] {
            #expect(RewindConfiguration.isLoopback(host))
        }
    }

    @Test func tokensNeverReachTheLogs() async throws {
        let lines = LogCapture()
        var logger = Logger(label: "rewind-test") { _ in LogCapture.Handler(capture: lines) }
        logger.logLevel = .trace
        let token = try await Self.token(publish: ["orders"], subscribe: ["orders"])
        let expired = try await Self.token(publish: ["orders"], expiresIn: -5)
        try await Self.withAuth(logger: logger) { server in
            #expect(try await server.publish("orders", #"{"data": 1}"#, query: "?access_token=\(token)").status == 201)
            #expect(try await server.publish("orders", #"{"data": 1}"#, query: "?access_token=\(expired)").status == 401)
            #expect(try await server.publish("orders", #"{"data": 1}"#, headers: [("Authorization", "Bearer \(token)")]).status == 201)
            let read = try await server.request(
                .GET,
                "/v1/streams/orders/events?access_token=\(token)&limit=x",
                headers: [("Accept", "application/json")]
            )
            #expect(read.status == 400)
            _ = try await server.sse("/v1/streams/orders/events?from=earliest&live=false&access_token=\(token)")
            _ = try await server.request(.GET, "/v1/nowhere?access_token=\(token)")
        }
        let output = lines.text
        #expect(output.contains("/v1/streams/orders/events"), "requests were logged")
        for secret in [token, expired, String(token.split(separator: ".")[2]), String(expired.split(separator: ".")[2])] {
            #expect(!output.contains(secret), "a token reached the log")
        }
    }
}

/// Every log line with its metadata (the logger's and the call's), as text, at any level.
final class LogCapture: Sendable {
    private let lines = Mutex<[String]>([])
    var text: String { lines.withLock { $0.joined(separator: "\n") } }
    func append(_ line: String) { lines.withLock { $0.append(line) } }

    struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let error = event.error.map { " error=\($0)" } ?? ""
            capture.append("\(event.level) \(event.message) \(metadata.merging(event.metadata ?? [:]) { $1 }) \(event.source)\(error)")
        }
    }
}
