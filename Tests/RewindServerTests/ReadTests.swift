import Foundation
import NIOHTTP1
import RewindCore
import RewindServer
import RewindTestSupport
import Testing

@Suite("JSON read, streams, health")
struct ReadTests {
    func read(_ server: TestServer, _ query: String) async throws -> TestServer.Reply {
        try await server.request(.GET, "/v1/streams/r/events\(query)", headers: [("Accept", "application/json")])
    }

    func ids(_ reply: TestServer.Reply) -> [Int] {
        (reply.object["events"] as? [[String: Any]] ?? []).compactMap { $0["id"] as? Int }
    }

    @Test(arguments: Backend.all) func pagesWithAfterLimitAndNextAfter(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let ids = try await server.publishTexts("r", (1...25).map { "e\($0)" }).map(Int.init)
            _ = try await server.publishTexts("other", ["o"])
            let first = try await read(server, "")
            #expect(first.status == 200)
            #expect(first.headers["Content-Type"].first == "application/json")
            #expect(self.ids(first) == ids, "default: from the start, up to 100")
            #expect(first.object["head"] as? Int == 26)
            #expect(first.object["next_after"] as? Int == 25)
            let page = try await read(server, "?after=10&limit=5")
            #expect(self.ids(page) == Array(ids[10..<15]))
            #expect(page.object["next_after"] as? Int == 15)
            let end = try await read(server, "?after=25")
            #expect(self.ids(end).isEmpty)
            #expect(end.object["next_after"] as? Int == 25, "an empty page keeps the cursor")
            let header = try await server.request(
                .GET,
                "/v1/streams/r/events?limit=2",
                headers: [("Accept", "application/json"), ("Last-Event-ID", "20")]
            )
            #expect(self.ids(header) == [21, 22])
            let latest = try await read(server, "?from=latest")
            #expect(self.ids(latest).isEmpty)
        }
    }

    @Test(arguments: Backend.all) func typeAndTimeFilters(backend: Backend) async throws {
        try await withRewind(backend) { server in
            _ = try await server.publish("r", #"[{"type": "a", "data": 1}, {"type": "b", "data": 2}]"#)
            try await Task.sleep(for: .milliseconds(20))
            let middle = try await server.publish("r", #"[{"type": "a", "data": 3}, {"type": "c", "data": 4}]"#)
            let middleTime = try #require(middle.object["time"] as? String)
            try await Task.sleep(for: .milliseconds(20))
            let last = try await server.publish("r", #"{"type": "a", "data": 5}"#)
            let lastTime = try #require(last.object["time"] as? String)
            #expect(ids(try await read(server, "?type=a")) == [1, 3, 5])
            #expect(ids(try await read(server, "?type=a&type=c")) == [1, 3, 4, 5])
            #expect(ids(try await read(server, "?since=\(middleTime)")) == [3, 4, 5])
            #expect(ids(try await read(server, "?until=\(lastTime)")) == [1, 2, 3, 4])
            #expect(ids(try await read(server, "?since=\(middleTime)&until=\(lastTime)&type=c")) == [4])
            let encoded = "2026-01-01T00:00:00%2B01:00"
            #expect(ids(try await read(server, "?since=\(encoded)")) == [1, 2, 3, 4, 5])
        }
    }

    @Test(arguments: [
        ("limit", "0"), ("limit", "10001"), ("limit", "x"), ("after", "-5"), ("since", "nope"), ("until", "2026-99-01T00:00:00Z"),
        ("from", "beginning"),
    ])
    func badParametersAre400(name: String, value: String) async throws {
        try await withRewind { server in
            let reply = try await read(server, "?\(name)=\(value)")
            #expect(reply.status == 400)
            #expect(reply.object["field"] as? String == name)
        }
    }

    @Test(arguments: Backend.all) func singleEvent(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let reply = try await server.publish("r", #"{"type": "t", "data": {"k": [1, "two"]}}"#, headers: [("Idempotency-Key", "key-1")])
            let location = try #require(reply.headers["Location"].first)
            let event = try await server.request(.GET, location)
            #expect(event.status == 200)
            #expect(event.object["id"] as? Int == 1)
            #expect(event.object["stream"] as? String == "r")
            #expect(event.object["type"] as? String == "t")
            #expect(event.object["key"] as? String == "key-1")
            #expect(event.object["time"] as? String == reply.object["time"] as? String)
            #expect(event.body.contains(#""data":{"k":[1,"two"]}"#))
            #expect(try await server.request(.GET, "/v1/streams/r/events/2").status == 404)
            #expect(try await server.request(.GET, "/v1/streams/elsewhere/events/1").status == 404, "the id exists, but not in that stream")
            #expect(try await server.request(.GET, "/v1/streams/r/events/x").status == 400)
        }
    }

    @Test(arguments: Backend.all) func streamsListAndDetail(backend: Backend) async throws {
        try await withRewind(backend) { server in
            #expect(try await server.request(.GET, "/v1/streams").body == "[]")
            _ = try await server.publishTexts("b.two", ["xx", "yyy"])
            _ = try await server.publishTexts("a.one", ["z"])
            let last = try await server.publish("b.two", "last", contentType: "text/plain")
            let list = try #require(try await server.request(.GET, "/v1/streams").json as? [[String: Any]])
            #expect(list.map { $0["name"] as? String } == ["a.one", "b.two"])
            let b = list[1]
            #expect(b["count"] as? Int == 3)
            #expect(b["first_id"] as? Int == 1)
            #expect(b["last_id"] as? Int == 4)
            #expect(b["bytes"] as? Int == 9)
            #expect(b["last_time"] as? String == last.object["time"] as? String)
            let one = try await server.request(.GET, "/v1/streams/a.one")
            #expect(one.status == 200)
            #expect(one.object["count"] as? Int == 1)
            let unknown = try await server.request(.GET, "/v1/streams/nope")
            #expect(unknown.status == 404)
            #expect(unknown.headers["Content-Type"].first == "application/problem+json")
            #expect(try await server.request(.GET, "/v1/streams/bad%20name").status == 400)
        }
    }

    @Test(arguments: Backend.all) func healthAndReadiness(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let health = try await server.request(.GET, "/healthz")
            #expect(health.status == 200 && health.object["status"] as? String == "ok")
            let ready = try await server.request(.GET, "/readyz")
            #expect(ready.status == 200 && ready.object["status"] as? String == "ready")
            let missing = try await server.request(.GET, "/v2/whatever")
            #expect(missing.status == 404)
            #expect(missing.object["detail"] as? String == "no such resource: GET /v2/whatever")
        }
    }
}
