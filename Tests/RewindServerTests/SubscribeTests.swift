import Foundation
import NIOHTTP1
import RewindCore
import RewindServer
import RewindStore
import RewindTestSupport
import Testing

@Suite("Subscribe (SSE)")
struct SubscribeTests {
    @Test(arguments: Backend.all) func headersAndPreludeComeFirst(backend: Backend) async throws {
        try await withRewind(backend, { $0.retryMilliseconds = 1234 }) { server in
            _ = try await server.publishTexts("orders", ["a", "b"])
            let stream = try await server.sse("/v1/streams/orders/events?live=false")
            #expect(stream.status == 200)
            #expect(stream.headers["Content-Type"].first == "text/event-stream; charset=utf-8")
            #expect(stream.headers["Cache-Control"].first == "no-cache")
            #expect(stream.headers["X-Accel-Buffering"].first == "no")
            #expect(stream.headers["Rewind-Head"].first == "2")
            #expect(String(decoding: stream.raw.prefix(12), as: UTF8.self) == "retry: 1234\n")
            #expect(stream.parser.retry == 1234)
            #expect(stream.parser.comments == [" rewind"])
            // The prelude ends no block: a client that dispatches on every blank line must see no event in it.
            #expect(String(decoding: stream.raw, as: UTF8.self) == "retry: 1234\n: rewind\n")
            // Default start is `latest`: nothing of the history.
            #expect(stream.messages.isEmpty)
        }
    }

    @Test(arguments: Backend.all) func preludeIsFlushedBeforeAnyEvent(backend: Backend) async throws {
        try await withRewind(backend) { server in
            // Nothing to send: the client must still get the prelude at once.
            let stream = try await server.sse("/v1/streams/quiet/events", timeout: .seconds(10)) { _ in true }
            #expect(stream.status == 200)
            #expect(stream.parser.retry == 3000)
        }
    }

    /// Payloads a browser's parser must get back intact (line endings become LF) and that cannot forge a field.
    static let hostile: [String] = [
        "plain",
        "two\nlines",
        "carriage\rreturn",
        "crlf\r\nline",
        "ends with newline\n",
        "\n",
        "",
        "ünïcødé ✓ 日本語 🚀 \u{2028}",
        "x\n\nevent: forged\nid: 999999\ndata: evil",
        "x\r\rid: 1\r\revent: rewind.reset\r\rdata: evil",
        "x\r\n\r\nretry: 1\r\n\r\n: comment\r\n",
        "data: looks like a field",
        "id: 5",
        ":",
    ]

    @Test(arguments: Backend.all) func framesCannotBeForgedByAnyPayload(backend: Backend) async throws {
        try await withRewind(backend) { server in
            var published: [(id: Int64, type: String, data: String)] = []
            for (index, data) in Self.hostile.enumerated() {
                let type = index % 2 == 0 ? "message" : "kind.\(index)"
                let body = try JSONSerialization.data(withJSONObject: ["type": type, "data": data])
                let reply = try await server.publish("hostile", String(decoding: body, as: UTF8.self))
                #expect(reply.status == 201)
                published.append((Int64((reply.object["ids"] as! [Int])[0]), type, data))
            }
            let text = try await server.publish("hostile", "text\r\nbody\rwith\nall endings\n\nid: 3", contentType: "text/plain")
            published.append((Int64((text.object["ids"] as! [Int])[0]), "message", "text\r\nbody\rwith\nall endings\n\nid: 3"))
            let stream = try await server.sse("/v1/streams/hostile/events?from=earliest&live=false")
            func normalized(_ text: String) -> String {
                text.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n")
            }
            #expect(stream.messages.count == published.count)
            for (message, event) in zip(stream.messages, published) {
                #expect(message.lastEventID == String(event.id))
                #expect(message.type == event.type)
                #expect(message.data == normalized(event.data))
            }
            // The JSON read returns the data byte for byte.
            #expect(try await server.history("hostile").map(\.data) == published.map(\.data))
        }
    }

    @Test(arguments: Backend.all) func startingPointPrecedence(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let ids = try await server.publishTexts("s", (1...10).map { "e\($0)" })
            func sseIDs(_ path: String, _ headers: [(String, String)] = []) async throws -> [Int64] {
                try await server.sse(path, headers: headers).ids
            }
            let base = "/v1/streams/s/events?live=false"
            #expect(try await sseIDs(base, [("Last-Event-ID", "\(ids[7])")]) == Array(ids[8...]))
            #expect(try await sseIDs(base + "&after=\(ids[2])&from=earliest", [("Last-Event-ID", "\(ids[7])")]) == Array(ids[8...]))
            #expect(try await sseIDs(base + "&after=\(ids[5])&last_event_id=\(ids[1])&from=earliest") == Array(ids[6...]))
            #expect(try await sseIDs(base + "&last_event_id=\(ids[1])&from=latest") == Array(ids[2...]))
            #expect(try await sseIDs(base + "&from=earliest&since=2000-01-01T00:00:00Z") == ids)
            #expect(try await sseIDs(base + "&from=latest").isEmpty)
            #expect(try await sseIDs(base + "&since=2000-01-01T00:00:00Z") == ids)
            #expect(try await sseIDs(base + "&since=2999-01-01T00:00:00Z").isEmpty)
            #expect(try await sseIDs(base).isEmpty)
            #expect(try await sseIDs(base + "&after=0&limit=3") == Array(ids[0..<3]))
            #expect(try await sseIDs(base + "&after=0&type=nope").isEmpty)
        }
    }

    @Test(arguments: Backend.all) func sinceStartsAtTheFirstEventAtOrAfterTheTime(backend: Backend) async throws {
        try await withRewind(backend) { server in
            _ = try await server.publishTexts("t", ["early"])
            try await Task.sleep(for: .milliseconds(20))
            let late = try await server.publishTexts("t", ["late1", "late2"])
            let lateTime = try #require(
                try await server.request(.GET, "/v1/streams/t/events/\(late[0])", headers: [("Accept", "application/json")]).object["time"] as? String
            )
            let stream = try await server.sse("/v1/streams/t/events?live=false&since=\(lateTime)")
            #expect(stream.ids == late)
        }
    }

    @Test(arguments: [
        ("Last-Event-ID", "abc"), ("Last-Event-ID", "-1"), ("after", "1.5"), ("last_event_id", "x"), ("from", "start"),
        ("since", "yesterday"), ("limit", "0"), ("live", "maybe"), ("type", "bad type"),
    ])
    func malformedStartIs400(name: String, value: String) async throws {
        try await withRewind { server in
            let reply: TestServer.Reply
            if name == "Last-Event-ID" {
                reply = try await server.request(.GET, "/v1/streams/s/events", headers: [("Accept", "text/event-stream"), (name, value)])
            } else {
                let encoded = value.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
                reply = try await server.request(.GET, "/v1/streams/s/events?\(name)=\(encoded)", headers: [("Accept", "text/event-stream")])
            }
            #expect(reply.status == 400)
            #expect(reply.headers["Content-Type"].first == "application/problem+json")
            #expect(reply.object["field"] as? String == name)
        }
    }

    @Test(arguments: Backend.all) func replayThenLiveOnOneConnection(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let history = try await server.publishTexts("live", ["h1", "h2", "h3"])
            let publisher = Task {
                try await Task.sleep(for: .milliseconds(300))
                return try await server.publishTexts("live", ["l1", "l2"])
            }
            let stream = try await server.sse("/v1/streams/live/events", headers: [("Last-Event-ID", "\(history[0])")]) { $0.messages.count >= 4 }
            let live = try await publisher.value
            #expect(stream.ids == [history[1], history[2]] + live)
            #expect(stream.messages.map(\.data) == ["h2", "h3", "l1", "l2"])
        }
    }

    @Test(arguments: Backend.all) func typeFilterDuringReplayAndLive(backend: Backend) async throws {
        try await withRewind(backend) { server in
            _ = try await server.publish("f", #"[{"type": "a", "data": "1"}, {"type": "b", "data": "2"}, {"type": "c", "data": "3"}]"#)
            let publisher = Task {
                try await Task.sleep(for: .milliseconds(300))
                _ = try await server.publish("f", #"[{"type": "b", "data": "4"}, {"type": "a", "data": "5"}]"#)
            }
            let stream = try await server.sse("/v1/streams/f/events?from=earliest&type=a&type=c") { $0.messages.count >= 3 }
            try await publisher.value
            #expect(stream.messages.map(\.data) == ["1", "3", "5"])
            #expect(stream.messages.map(\.type) == ["a", "c", "a"])
        }
    }

    @Test(arguments: Backend.all) func otherStreamsAreNotDelivered(backend: Backend) async throws {
        try await withRewind(backend) { server in
            _ = try await server.publishTexts("mine", ["m1"])
            _ = try await server.publishTexts("mine.sub", ["not mine"])
            _ = try await server.publishTexts("other", ["o1"])
            _ = try await server.publishTexts("mine", ["m2"])
            let stream = try await server.sse("/v1/streams/mine/events?from=earliest&live=false")
            #expect(stream.messages.map(\.data) == ["m1", "m2"])
        }
    }

    @Test(arguments: Backend.all) func heartbeatWhileIdle(backend: Backend) async throws {
        try await withRewind(backend, { $0.heartbeat = .milliseconds(200) }) { server in
            let start = ContinuousClock.now
            // The prelude's comment, then two heartbeats.
            let stream = try await server.sse("/v1/streams/idle/events", timeout: .seconds(10)) { $0.parser.comments.count >= 3 }
            let elapsed = ContinuousClock.now - start
            #expect(stream.messages.isEmpty)
            #expect(elapsed >= .milliseconds(400), "two heartbeats come no sooner than two intervals")
            #expect(elapsed < .seconds(3))
        }
    }
}
