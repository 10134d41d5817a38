import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RewindCore
import RewindServer
import RewindTestSupport
import Synchronization
import Testing

/// The properties that define Rewind: in order, no gap, no duplicate, across the switch from replay to live and
/// across reconnects, while publishers write as fast as they can.
@Suite("Delivery guarantees", .serialized)
struct DeliveryPropertyTests {
    /// Publishes until told to stop, to the watched stream and to another one so ids interleave; single events and
    /// small batches, from several tasks at once.
    static func publishUntilStopped(_ server: TestServer, stream: String, tasks: Int, stop: StopFlag) async throws -> Int {
        try await withThrowingTaskGroup(of: Int.self) { group in
            for task in 0..<tasks {
                group.addTask {
                    var count = 0
                    var n = 0
                    while !stop.isSet {
                        n += 1
                        let target = n % 5 == 0 ? "noise" : stream
                        let size = n % 3 + 1
                        let texts = (0..<size).map { "p\(task)-\(n)-\($0)" }
                        _ = try await server.publishTexts(target, texts)
                        count += size
                        stop.published.add(size, ordering: .relaxed)
                    }
                    return count
                }
            }
            return try await group.reduce(0, +)
        }
    }

    /// With the default window, and with a window so small that subscribers keep falling out of it and back.
    @Test(arguments: Backend.all, [16_384, 32])
    func replayToLiveHandoffUnderConcurrentPublishing(backend: Backend, windowEvents: Int) async throws {
        try await withRewind(backend, { $0.windowEvents = windowEvents }) { server in
            // History: 25 000 events on the watched stream, interleaved with another stream's.
            for batch in 0..<25 {
                _ = try await server.publishTexts("handoff", (0..<1000).map { "h\(batch)-\($0)" })
                _ = try await server.publishTexts("noise", (0..<50).map { "n\(batch)-\($0)" })
            }
            let stop = StopFlag()
            let publishers = Task { try await Self.publishUntilStopped(server, stream: "handoff", tasks: 4, stop: stop) }

            let subscriberCount = 10
            let results = try await withThrowingTaskGroup(of: (cursor: Int64, ids: [Int64], data: [String]).self) { group in
                for index in 0..<subscriberCount {
                    group.addTask {
                        // Open at a random moment while publishing goes on, at a random cursor.
                        try await Task.sleep(for: .milliseconds(Int.random(in: 0...1500)))
                        let head = Int64(try await server.request(.GET, "/v1/streams/handoff").object["last_id"] as! Int)
                        let cursor: Int64 =
                            switch index % 5 {
                            case 0: max(0, head - 20_000)
                            case 1: head
                            case 2: 0
                            case 3: Int64.random(in: 0...head)
                            default: max(0, head - Int64.random(in: 1...50))
                            }
                        let stream = try await server.sse(
                            "/v1/streams/handoff/events",
                            headers: [("Last-Event-ID", String(cursor))],
                            timeout: .seconds(240)
                        ) { $0.messages.last?.data == "end" }
                        return (cursor, stream.ids, stream.messages.map(\.data))
                    }
                }
                // Let every subscriber get into its live phase under load, then stop and mark the end. On a busy
                // machine publishing can be slow: the load lasts until it has published a few hundred events too.
                let started = ContinuousClock.now
                try await Task.sleep(for: .milliseconds(3000))
                while stop.published.load(ordering: .relaxed) < 300, ContinuousClock.now - started < .seconds(60) {
                    try await Task.sleep(for: .milliseconds(100))
                }
                stop.set()
                let published = try await publishers.value
                #expect(published > 100, "publishers kept publishing during the test")
                _ = try await server.publishTexts("handoff", ["end"])
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.count == subscriberCount)
            for result in results {
                let expected = try await server.history("handoff", after: result.cursor)
                let mismatch = sequenceMismatch(received: result.ids, expected: expected.map(\.id))
                #expect(mismatch == nil, "subscriber from \(result.cursor): \(mismatch ?? "")")
                #expect(result.data == expected.map(\.data))
            }
        }
    }

    @Test(arguments: Backend.all, [16_384, 32])
    func reconnectingTwentyTimesAtRandomPointsLosesNothing(backend: Backend, windowEvents: Int) async throws {
        try await withRewind(backend, { $0.windowEvents = windowEvents }) { server in
            _ = try await server.publishTexts("resume", (0..<3000).map { "r\($0)" })
            let stop = StopFlag()
            let publishers = Task { try await Self.publishUntilStopped(server, stream: "resume", tasks: 3, stop: stop) }
            var received: [SSEParser.Message] = []
            var lastEventID: String? = nil
            for _ in 0..<20 {
                // Read a random number of bytes, then drop the connection mid-frame if it so happens.
                let budget = Int.random(in: 1...20_000)
                var request = HTTPClientRequest(url: server.base + "/v1/streams/resume/events" + (lastEventID == nil ? "?from=earliest" : ""))
                if let lastEventID { request.headers.add(name: "Last-Event-ID", value: lastEventID) }
                let connection = request
                let (messages, parser) = try await withDeadline(.seconds(60), "reconnect") {
                    let response = try await server.client.execute(connection, timeout: .seconds(60))
                    var parser = SSEParser()
                    var messages: [SSEParser.Message] = []
                    var seen = 0
                    for try await chunk in response.body {
                        let bytes = Array(chunk.readableBytesView)
                        let take = min(bytes.count, budget - seen)
                        messages += parser.feed(bytes[..<take])
                        seen += take
                        if seen >= budget { break }
                    }
                    return (messages, parser)
                }
                received += messages
                if !parser.lastEventID.isEmpty { lastEventID = parser.lastEventID }
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...50)))
            }
            stop.set()
            _ = try await publishers.value
            _ = try await server.publishTexts("resume", ["end"])
            let final = try await server.sse(
                "/v1/streams/resume/events",
                headers: lastEventID.map { [("Last-Event-ID", $0)] } ?? [],
                timeout: .seconds(120)
            ) { $0.messages.last?.data == "end" }
            received += final.messages
            let expected = try await server.history("resume")
            let mismatch = sequenceMismatch(received: received.map { Int64($0.lastEventID)! }, expected: expected.map(\.id))
            #expect(mismatch == nil, "\(mismatch ?? "")")
            #expect(received.map(\.data) == expected.map(\.data))
        }
    }
}

/// A flag one task sets and others poll.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    /// Events published so far by the tasks this flag stops.
    let published = Atomic<Int>(0)
    var isSet: Bool { flag.load(ordering: .acquiring) }
    func set() { flag.store(true, ordering: .releasing) }
}

/// Describes where a received id sequence first departs from the expected one (a gap, a duplicate, a reordering,
/// a missing tail or extra events), or nil if they are equal.
func sequenceMismatch(received: [Int64], expected: [Int64]) -> String? {
    for index in 0..<min(received.count, expected.count) where received[index] != expected[index] {
        let got = received[index]
        let want = expected[index]
        let kind = received[..<index].contains(got) ? "duplicate" : (got > want ? "gap" : "out of order")
        return "\(kind) at position \(index): got id \(got), expected \(want) (received \(received.count), expected \(expected.count))"
    }
    if received.count < expected.count { return "missing the last \(expected.count - received.count) events, from id \(expected[received.count])" }
    if received.count > expected.count { return "\(received.count - expected.count) events too many, from id \(received[expected.count])" }
    return nil
}
