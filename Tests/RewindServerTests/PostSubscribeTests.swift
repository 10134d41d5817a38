import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RewindCore
import RewindServer
import Testing

/// `POST /v1/events`: the subscription and JSON read of `GET /v1/events`, described by a JSON body, as
/// fetch-event-source sends it; every refusal names the member at fault.
@Suite struct PostSubscribeTests {
    /// Opens `POST /v1/events` as an SSE stream and reads until `stop` says so or the server ends the stream.
    static func postSSE(
        _ server: TestServer,
        _ body: String,
        headers: [(String, String)] = [],
        path: String = "/v1/events",
        stop: @escaping @Sendable (TestServer.Stream) -> Bool = { _ in false }
    ) async throws -> TestServer.Stream {
        try await server.sse(
            path,
            method: .POST,
            body: body,
            headers: [("Content-Type", "application/json")] + headers,
            timeout: .seconds(30),
            stop: stop
        )
    }

    /// `POST /v1/events` asking for a JSON page.
    static func postJSON(_ server: TestServer, _ body: String, headers: [(String, String)] = []) async throws -> TestServer.Reply {
        try await server.request(
            .POST,
            "/v1/events",
            headers: [("Accept", "application/json"), ("Content-Type", "application/json")] + headers,
            body: Array(body.utf8)
        )
    }

    @Test func replayThenLiveOnOneConnection() async throws {
        try await withRewind { server in
            let a = try await server.publishTexts("a", ["a1"])
            let b = try await server.publishTexts("b.x", ["b1"])
            _ = try await server.publishTexts("c", ["not followed"])
            let publisher = Task {
                try await Task.sleep(for: .milliseconds(300))
                return try await server.publishTexts("b.y", ["live"])
            }
            let stream = try await Self.postSSE(server, #"{"streams": ["a", "b.*"], "from": "earliest"}"#) { $0.messages.count >= 3 }
            let live = try await publisher.value
            #expect(stream.status == 200)
            #expect(stream.headers.first(name: "Content-Type") == "text/event-stream; charset=utf-8")
            #expect(stream.ids == a + b + live)
            #expect(stream.messages.map(\.data) == ["a1", "b1", "live"])
        }
    }

    @Test func jsonPageWithFiltersAndBounds() async throws {
        try await withRewind { server in
            _ = try await server.publish("a", #"[{"type": "t1", "data": 1}, {"type": "t2", "data": 2}, {"type": "t1", "data": 3}]"#)
            _ = try await server.publish("b", #"{"type": "t1", "data": 4}"#)
            let all = try await Self.postJSON(server, #"{"streams": ["a", "b"], "types": ["t1"]}"#)
            #expect(all.status == 200)
            let events = try #require(all.object["events"] as? [[String: Any]])
            #expect(events.map { $0["id"] as? Int } == [1, 3, 4])
            #expect(all.object["next_after"] as? Int == 4)
            #expect(all.object["head"] as? Int == 4)
            let page = try await Self.postJSON(server, #"{"streams": ["a", "b"], "after": 1, "limit": 2}"#)
            #expect((page.object["events"] as? [[String: Any]])?.map { $0["id"] as? Int } == [2, 3])
            #expect(page.object["next_after"] as? Int == 3)
            let latest = try await Self.postJSON(server, #"{"streams": ["a"], "from": "latest"}"#)
            #expect((latest.object["events"] as? [Any])?.isEmpty == true)
            #expect(latest.object["next_after"] as? Int == 4)
            // A page over the JSON read's maximum is refused as with GET.
            let tooBig = try await Self.postJSON(server, #"{"streams": ["a"], "limit": 10001}"#)
            #expect(tooBig.status == 400)
            #expect(tooBig.object["field"] as? String == "limit")
        }
    }

    @Test func longPollAnswersWhenAnEventCommits() async throws {
        try await withRewind { server in
            let first = try await server.publishTexts("a", ["before"])
            let publisher = Task {
                try await Task.sleep(for: .milliseconds(400))
                return try await server.publishTexts("a", ["during"])
            }
            let started = ContinuousClock.now
            let reply = try await Self.postJSON(server, #"{"streams": ["a"], "after": \#(first[0]), "wait": 20}"#)
            let elapsed = ContinuousClock.now - started
            let published = try await publisher.value
            #expect(reply.status == 200)
            #expect((reply.object["events"] as? [[String: Any]])?.map { $0["id"] as? Int } == published.map(Int.init))
            #expect(elapsed < .seconds(10), "the long-poll answered after \(elapsed)")
        }
    }

    @Test func lastEventIDHeaderWinsOverTheBody() async throws {
        try await withRewind { server in
            let ids = try await server.publishTexts("a", ["1", "2", "3", "4"])
            let body = #"{"streams": ["a"], "after": 0, "live": false}"#
            let resumed = try await Self.postSSE(server, body, headers: [("Last-Event-ID", String(ids[1]))])
            #expect(resumed.ids == Array(ids[2...]))
            let fresh = try await Self.postSSE(server, body)
            #expect(fresh.ids == ids)
            // The JSON page takes it too, and a malformed one is refused naming the header.
            let page = try await Self.postJSON(server, #"{"streams": ["a"], "from": "earliest"}"#, headers: [("Last-Event-ID", String(ids[2]))])
            #expect((page.object["events"] as? [[String: Any]])?.map { $0["id"] as? Int } == [Int(ids[3])])
            let bad = try await Self.postJSON(server, #"{"streams": ["a"]}"#, headers: [("Last-Event-ID", "x")])
            #expect(bad.status == 400)
            #expect(bad.object["field"] as? String == "Last-Event-ID")
        }
    }

    @Test func limitAndLiveEndTheStream() async throws {
        try await withRewind { server in
            let ids = try await server.publishTexts("a", ["1", "2", "3"])
            let limited = try await Self.postSSE(server, #"{"streams": ["a"], "from": "earliest", "limit": 2}"#)
            #expect(limited.ids == Array(ids[..<2]))
            let since = try await Self.postSSE(server, #"{"streams": ["a"], "since": "2000-01-01T00:00:00Z", "live": false}"#)
            #expect(since.ids == ids)
        }
    }

    /// JSON Schema counts `2.0` and `1e1` as integers, so the body does too, exactly; `1.5` is not one.
    @Test func integersMaySpellAFraction() async throws {
        try await withRewind { server in
            let ids = try await server.publishTexts("a", ["1", "2", "3", "4"])
            let page = try await Self.postJSON(server, #"{"streams": ["a"], "after": 1.0e0, "limit": 20e-1}"#)
            #expect((page.object["events"] as? [[String: Any]])?.map { $0["id"] as? Int } == ids[1...2].map { Int($0) })
            for bad in ["1.5", "1e-1", "1e40", "9223372036854775808.0"] {
                let reply = try await Self.postJSON(server, #"{"streams": ["a"], "after": \#(bad)}"#)
                #expect(reply.status == 400, "\(bad)")
                #expect(reply.object["field"] as? String == "after")
            }
        }
    }

    @Test func reconnectToADeletedStreamIs204() async throws {
        try await withRewind { server in
            let ids = try await server.publishTexts("doomed", ["x"])
            #expect(try await server.request(.DELETE, "/v1/streams/doomed").status == 204)
            let stream = try await Self.postSSE(server, #"{"streams": ["doomed"]}"#, headers: [("Last-Event-ID", String(ids[0]))])
            #expect(stream.status == 204)
        }
    }

    @Test(arguments: [
        (#"{"streams": ["a", "b c"]}"#, "streams[1]"),
        (#"{"streams": ["a", "ok", 3]}"#, "streams[2]"),
        (#"{"streams": "a"}"#, "streams"),
        (#"{"streams": []}"#, "streams"),
        (#"{"types": ["t"]}"#, "streams"),
        (#"{"streams": ["a"], "types": ["ok", "rewind gap"]}"#, "types[1]"),
        (#"{"streams": ["a"], "types": "t"}"#, "types"),
        (#"{"streams": ["a"], "stream": "b"}"#, "stream"),
        (#"{"streams": ["a"], "streams": ["b"]}"#, "streams"),
        (#"{"streams": ["a"], "after": -1}"#, "after"),
        (#"{"streams": ["a"], "after": "5"}"#, "after"),
        (#"{"streams": ["a"], "after": 1.5}"#, "after"),
        (#"{"streams": ["a"], "after": 99999999999999999999}"#, "after"),
        (#"{"streams": ["a"], "from": "beginning"}"#, "from"),
        (#"{"streams": ["a"], "since": "yesterday"}"#, "since"),
        (#"{"streams": ["a"], "until": 5}"#, "until"),
        (#"{"streams": ["a"], "after": 1, "from": "earliest"}"#, "from"),
        (#"{"streams": ["a"], "since": "2026-01-01T00:00:00Z", "after": 3}"#, "after"),
        (#"{"streams": ["a"], "limit": 0}"#, "limit"),
        (#"{"streams": ["a"], "limit": true}"#, "limit"),
        (#"{"streams": ["a"], "live": "false"}"#, "live"),
        (#"{"streams": ["a"], "wait": 61}"#, "wait"),
        (#"{"streams": ["a"], "wait": -1}"#, "wait"),
        (#"{"streams": ["a"], "wait": 1e400}"#, "wait"),
        (#"{"streams": ["a"]"#, "body"),
        (#"{"streams": ["a"]} x"#, "body"),
        (#"["a"]"#, "body"),
        ("", "body"),
    ])
    func malformedBodiesAre400NamingTheMember(body: String, field: String) async throws {
        try await withRewind { server in
            for accept in ["text/event-stream", "application/json"] {
                let reply = try await server.request(
                    .POST,
                    "/v1/events",
                    headers: [("Accept", accept), ("Content-Type", "application/json")],
                    body: Array(body.utf8)
                )
                #expect(reply.status == 400, "\(body) with \(accept): \(reply.body)")
                #expect(reply.headers.first(name: "Content-Type") == "application/problem+json")
                #expect(reply.object["field"] as? String == field, "\(body): \(reply.body)")
                #expect((reply.object["detail"] as? String)?.contains(field) == true, "\(body): \(reply.body)")
            }
        }
    }

    @Test(arguments: [nil, "text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin1"])
    func otherContentTypesAre415NamingTheHeader(contentType: String?) async throws {
        try await withRewind { server in
            let reply = try await server.request(
                .POST,
                "/v1/events",
                headers: contentType.map { [("Content-Type", $0)] } ?? [],
                body: Array(#"{"streams": ["a"]}"#.utf8)
            )
            #expect(reply.status == 415)
            #expect(reply.object["field"] as? String == "Content-Type")
            #expect((reply.object["detail"] as? String)?.contains("Content-Type") == true)
        }
    }

    @Test func streamCountAndBodySizeAreLimited() async throws {
        try await withRewind({ $0.maxStreamsPerSubscription = 2 }) { server in
            let three = try await Self.postJSON(server, #"{"streams": ["a", "b", "c"]}"#)
            #expect(three.status == 400)
            #expect(three.object["field"] as? String == "streams")
            #expect((three.object["detail"] as? String)?.contains("at most 2") == true)
            #expect(try await Self.postJSON(server, #"{"streams": ["a", "b"]}"#).status == 200)
            // Whitespace is valid JSON, so only the size can refuse this body.
            let huge = #"{"streams": ["a"]"# + String(repeating: " ", count: 1 << 20) + "}"
            let reply = try await Self.postJSON(server, huge)
            #expect(reply.status == 413)
            #expect(reply.object["field"] as? String == "body")
        }
    }

    @Test func everyNamedStreamNeedsTheSubscribeScope() async throws {
        try await AuthTests.withAuth { server in
            let admin = try await AuthTests.token(admin: true)
            _ = try await server.publish("a", #"{"data": 1}"#, headers: [("Authorization", "Bearer \(admin)")])
            _ = try await server.publish("b", #"{"data": 2}"#, headers: [("Authorization", "Bearer \(admin)")])
            let body = #"{"streams": ["a", "b"], "from": "earliest"}"#
            let anonymous = try await Self.postJSON(server, body)
            #expect(anonymous.status == 401)
            #expect(anonymous.headers.first(name: "WWW-Authenticate")?.hasPrefix("Bearer") == true)
            let onlyA = try await AuthTests.token(subscribe: ["a"])
            let partial = try await Self.postJSON(server, body, headers: [("Authorization", "Bearer \(onlyA)")])
            #expect(partial.status == 403)
            #expect((partial.object["detail"] as? String)?.contains("b") == true)
            #expect(partial.headers.first(name: "WWW-Authenticate")?.contains("insufficient_scope") == true)
            let sse = try await Self.postSSE(server, body, headers: [("Authorization", "Bearer \(onlyA)")])
            #expect(sse.status == 403)
            let both = try await AuthTests.token(subscribe: ["a", "b"])
            let allowed = try await Self.postJSON(server, body, headers: [("Cookie", "rewind_token=\(both)")])
            #expect((allowed.object["events"] as? [Any])?.count == 2)
            let stream = try await Self.postSSE(
                server,
                #"{"streams": ["a", "b"], "from": "earliest", "live": false}"#,
                path: "/v1/events?access_token=\(both)"
            )
            #expect(stream.status == 200)
            #expect(stream.ids == [1, 2])
        }
    }
}
