import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import RewindCore
import RewindServer
import RewindStore
import RewindTestSupport
import Testing

@Suite("Signals, deletion, multi-stream, long-poll, external writers")
struct SignalTests {
    @Test(arguments: Backend.all) func resetWhenTheCursorIsBeyondTheHead(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let ids = try await server.publishTexts("s", ["a", "b", "c"])
            // The live event is published once the signal has arrived, so it comes after the head the signal names.
            let signalled = Flag()
            let publisher = Task {
                try await waitUntil("the reset signal arrived") { signalled.isSet }
                return try await server.publishTexts("s", ["d"])
            }
            let stream = try await server.sse("/v1/streams/s/events", headers: [("Last-Event-ID", "1000")]) { stream in
                if !stream.messages.isEmpty { _ = signalled.set() }
                return stream.messages.count >= 2
            }
            let live = try await publisher.value
            #expect(stream.messages.first?.type == "rewind.reset")
            let signal = try JSONSerialization.jsonObject(with: Data(stream.messages[0].data.utf8)) as? [String: Int]
            #expect(signal == ["after": 1000, "head": Int(ids[2])])
            // The signal moves the browser's last event id to the head, so a reconnect resumes from there.
            #expect(stream.messages[0].lastEventID == String(ids[2]))
            #expect(stream.messages[1].lastEventID == String(live[0]) && stream.messages[1].data == "d")
        }
    }

    @Test(arguments: Backend.all) func gapWhenEventsAfterTheCursorWerePruned(backend: Backend) async throws {
        try await withRewind(
            backend,
            { configuration in
                configuration.retention = RetentionPolicy(defaults: .init(maxEvents: 3))
                configuration.maintenanceInterval = .milliseconds(100)
            }
        ) { server in
            let ids = try await server.publishTexts("g", (1...10).map { "e\($0)" })
            _ = try await server.publishTexts("other", ["o"])
            try await withDeadline(.seconds(10), "pruning") {
                while try await server.request(.GET, "/v1/streams/g").object["count"] as? Int != 3 {
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            let info = try await server.request(.GET, "/v1/streams/g").object
            #expect(info["first_id"] as? Int == Int(ids[7]))
            let stream = try await server.sse("/v1/streams/g/events?live=false", headers: [("Last-Event-ID", String(ids[1]))])
            #expect(stream.messages.map(\.type) == ["rewind.gap", "message", "message", "message"])
            let signal = try JSONSerialization.jsonObject(with: Data(stream.messages[0].data.utf8)) as? [String: Int]
            #expect(signal == ["after": Int(ids[1]), "earliest": Int(ids[7])])
            // The gap signal has no id: the client's last event id stays its own cursor until the next event.
            let frames = String(decoding: stream.raw, as: UTF8.self).components(separatedBy: "\n\n")
            let gapFrame = try #require(frames.first { $0.contains("rewind.gap") })
            #expect(!gapFrame.split(separator: "\n").contains { $0.hasPrefix("id") })
            #expect(stream.ids.suffix(3) == Array(ids[7...]))
            // The whole retained history is no gap; nor is a cursor at or past the horizon.
            #expect(try await server.sse("/v1/streams/g/events?live=false&from=earliest").messages.map(\.type) == ["message", "message", "message"])
            #expect(try await server.sse("/v1/streams/g/events?live=false&after=\(ids[6])").messages.count == 3)
            // Ids are not reused after pruning.
            #expect(try await server.publishTexts("g", ["new"]) == [ids[9] + 2])
        }
    }

    @Test(arguments: Backend.all) func reconnectToUnknownStreamIs204(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let reconnect = try await server.request(
                .GET,
                "/v1/streams/never/events",
                headers: [("Accept", "text/event-stream"), ("Last-Event-ID", "5")]
            )
            #expect(reconnect.status == 204)
            let fresh = try await server.sse("/v1/streams/never/events", timeout: .seconds(5)) { _ in true }
            #expect(fresh.status == 200, "a first subscription may wait for a stream's first event")
        }
    }

    @Test(arguments: Backend.all) func deletingAStreamEndsItsSubscriptionsAndTombstonesIt(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let ids = try await server.publishTexts("doomed", ["a", "b"])
            _ = try await server.publishTexts("kept", ["k"])
            let subscriber = Task {
                try await server.sse("/v1/streams/doomed/events", headers: [("Last-Event-ID", "0")], timeout: .seconds(20))
            }
            try await Task.sleep(for: .milliseconds(300))
            let deleted = try await server.request(.DELETE, "/v1/streams/doomed")
            #expect(deleted.status == 204)
            let ended = try await subscriber.value
            #expect(ended.ids == ids, "the open stream got its events, then was closed")
            let reconnect = try await server.request(
                .GET,
                "/v1/streams/doomed/events",
                headers: [("Accept", "text/event-stream"), ("Last-Event-ID", String(ids[1]))]
            )
            #expect(reconnect.status == 204)
            #expect(try await server.request(.GET, "/v1/streams/doomed/events", headers: [("Accept", "text/event-stream")]).status == 204)
            let publish = try await server.publish("doomed", "x", contentType: "text/plain")
            #expect(publish.status == 410)
            #expect(publish.object["field"] as? String == "stream")
            #expect(try await server.request(.GET, "/v1/streams/doomed").status == 410)
            #expect(try await server.request(.DELETE, "/v1/streams/doomed").status == 410)
            #expect(try await server.request(.DELETE, "/v1/streams/nothing").status == 404)
            let list = try #require(try await server.request(.GET, "/v1/streams").json as? [[String: Any]])
            #expect(list.map { $0["name"] as? String } == ["kept"])
            #expect(try await server.request(.GET, "/v1/streams/doomed/events/\(ids[0])").status == 404)
            // Ids go on from where they were.
            #expect(try await server.publishTexts("kept", ["k2"]) == [4])
        }
    }

    @Test(arguments: Backend.all) func severalStreamsShareOneCursor(backend: Backend) async throws {
        try await withRewind(backend) { server in
            var expected: [(id: Int64, data: String)] = []
            for round in 0..<5 {
                for stream in ["orders", "orders.eu", "orders.eu.fr", "billing", "ordersx", "audit"] {
                    let id = try await server.publishTexts(stream, ["\(stream)-\(round)"])[0]
                    if ["orders", "orders.eu", "orders.eu.fr", "billing"].contains(stream) { expected.append((id, "\(stream)-\(round)")) }
                }
            }
            let path = "/v1/events?stream=orders&stream=orders.*&stream=billing"
            let replay = try await server.sse(path + "&from=earliest&live=false")
            #expect(replay.ids == expected.map(\.id))
            #expect(replay.messages.map(\.data) == expected.map(\.data))
            // Resume the shared cursor from the middle, then live, with streams interleaving.
            let cursor = expected[7].id
            let publisher = Task {
                try await Task.sleep(for: .milliseconds(300))
                var live: [Int64] = []
                for stream in ["audit", "orders.eu", "ordersx", "billing", "orders"] {
                    let id = try await server.publishTexts(stream, ["live-\(stream)"])[0]
                    if stream != "audit" && stream != "ordersx" { live.append(id) }
                }
                return live
            }
            let wanted = expected.count - 8 + 3
            let resumed = try await server.sse(path, headers: [("Last-Event-ID", String(cursor))]) { $0.messages.count >= wanted }
            let live = try await publisher.value
            #expect(resumed.ids == expected[8...].map(\.id) + live)
            let all = try await server.sse("/v1/events?stream=*&from=earliest&live=false&type=message")
            #expect(all.messages.count == 35)
            let json = try await server.request(.GET, "/v1/events?stream=orders.eu*&after=0&limit=3", headers: [("Accept", "application/json")])
            let events = try #require(json.object["events"] as? [[String: Any]])
            #expect(events.map { $0["stream"] as? String } == ["orders.eu", "orders.eu.fr", "orders.eu"])
        }
    }

    @Test(arguments: ["", "stream=", "stream=bad%20name", "stream=a**", "stream=.*"])
    func badStreamPatternsAre400(query: String) async throws {
        try await withRewind { server in
            let reply = try await server.request(.GET, "/v1/events?\(query)", headers: [("Accept", "text/event-stream")])
            #expect(reply.status == 400)
            #expect(reply.object["field"] as? String == "stream")
        }
    }

    @Test(arguments: Backend.all) func typeFiltersOnSeveralStreams(backend: Backend) async throws {
        try await withRewind(backend) { server in
            _ = try await server.publish("a", #"[{"type": "x", "data": "1"}, {"type": "y", "data": "2"}]"#)
            _ = try await server.publish("b", #"[{"type": "y", "data": "3"}, {"type": "x", "data": "4"}]"#)
            let publisher = Task {
                try await Task.sleep(for: .milliseconds(300))
                _ = try await server.publish("b", #"[{"type": "y", "data": "5"}, {"type": "x", "data": "6"}]"#)
            }
            let stream = try await server.sse("/v1/events?stream=a&stream=b&type=x&from=earliest") { $0.messages.count >= 3 }
            try await publisher.value
            #expect(stream.messages.map(\.data) == ["1", "4", "6"])
        }
    }

    @Test(arguments: Backend.all) func longPollAnswersOnCommitOrWhenTheWaitEnds(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let first = try await server.publishTexts("lp", ["a"])
            // Something is there already: no waiting.
            let immediate = try await server.request(.GET, "/v1/streams/lp/events?after=0&wait=30", headers: [("Accept", "application/json")])
            #expect((immediate.object["events"] as? [[String: Any]])?.count == 1)
            let start = ContinuousClock.now
            let publisher = Task {
                try await Task.sleep(for: .milliseconds(400))
                return try await server.publishTexts("lp", ["b"])
            }
            let waited = try await server.request(.GET, "/v1/streams/lp/events?after=\(first[0])&wait=30", headers: [("Accept", "application/json")])
            let elapsed = ContinuousClock.now - start
            let second = try await publisher.value
            #expect((waited.object["events"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } == [Int(second[0])])
            #expect(elapsed >= .milliseconds(350) && elapsed < .seconds(10), "answered on the commit, not at the deadline")
            // Nothing comes: an empty page when the wait ends.
            let quietStart = ContinuousClock.now
            let quiet = try await server.request(.GET, "/v1/streams/lp/events?after=\(second[0])&wait=0.5", headers: [("Accept", "application/json")])
            let quietElapsed = ContinuousClock.now - quietStart
            #expect((quiet.object["events"] as? [[String: Any]])?.isEmpty == true)
            #expect(quiet.object["next_after"] as? Int == Int(second[0]))
            #expect(quietElapsed >= .milliseconds(450) && quietElapsed < .seconds(5))
            // Other streams' commits do not end the wait early.
            let otherStart = ContinuousClock.now
            let other = Task {
                try await Task.sleep(for: .milliseconds(100))
                _ = try await server.publishTexts("elsewhere", ["z"])
            }
            let stillQuiet = try await server.request(
                .GET,
                "/v1/streams/lp/events?after=\(second[0])&wait=0.6",
                headers: [("Accept", "application/json")]
            )
            try await other.value
            #expect((stillQuiet.object["events"] as? [[String: Any]])?.isEmpty == true)
            #expect(ContinuousClock.now - otherStart >= .milliseconds(550))
            #expect(try await server.request(.GET, "/v1/streams/lp/events?wait=61", headers: [("Accept", "application/json")]).status == 400)
        }
    }

    @Test(arguments: Backend.all) func eventsFromAnotherWriterReachSubscribers(backend: Backend) async throws {
        try await withRewind(backend) { server in
            _ = try await server.publishTexts("ext", ["own"])
            // A second log on the same database: another SQLite writer, as `rewind publish --db` in another process
            // is, or another node on the same PostgreSQL database. The server sees its commits only by polling.
            try await server.withExternalLog { external in
                let sent = Locked<[ContinuousClock.Instant]>([])
                let received = Locked<[ContinuousClock.Instant]>([])
                let publisher = Task {
                    try await Task.sleep(for: .milliseconds(300))
                    var ids: [Int64] = []
                    for n in 0..<5 {
                        sent.withLock { $0.append(.now) }
                        ids.append(
                            try await external.append(
                                AppendRequest(stream: try StreamName(validating: "ext"), events: [NewEvent(data: "external-\(n)")])
                            )
                            .firstID
                        )
                        try await Task.sleep(for: .milliseconds(150))
                    }
                    return ids
                }
                let stream = try await server.sse("/v1/streams/ext/events", headers: [("Last-Event-ID", "1")], timeout: .seconds(20)) { stream in
                    received.withLock { arrivals in
                        while arrivals.count < stream.messages.count { arrivals.append(.now) }
                    }
                    return stream.messages.count >= 5
                }
                let ids = try await publisher.value
                #expect(stream.ids == ids)
                #expect(stream.messages.map(\.data) == (0..<5).map { "external-\($0)" })
                let latencies = zip(received.withLock { $0 }, sent.withLock { $0 }).map { $0 - $1 }.sorted()
                // The watcher looks every 25 ms; the bound leaves room for a loaded machine.
                #expect(latencies[latencies.count / 2] < .milliseconds(100), "median pick-up \(latencies)")
                #expect(latencies.last! < .milliseconds(500), "slowest pick-up \(latencies)")
            }
        }
    }
}

/// A value shared between a test and the closures it hands out.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()

    init(_ value: Value) { self.value = value }

    func withLock<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}
