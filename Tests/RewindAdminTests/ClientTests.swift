import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import RewindAdmin
import RewindCore
import RewindServer
import RewindStore
import Testing

/// Runs the real server in-process, on a fresh database or the file at `path`, and hands its base URL and
/// database path to `body`.
func withServer(
    path existing: String? = nil,
    configure: @Sendable (inout RewindConfiguration) -> Void = { _ in },
    _ body: @escaping @Sendable (_ base: String, _ path: String) async throws -> Void
) async throws {
    let directory = try TemporaryDirectory()
    let path = existing ?? directory.path("served.sqlite")
    var logger = Logger(label: "rewind-admin-test")
    logger.logLevel = .warning
    var configuration = RewindConfiguration(host: "127.0.0.1", port: 0, store: StoreConfiguration(path: path))
    configure(&configuration)
    let app = try await buildApplication(configuration: configuration, logger: logger)
    try await app.test(.live) { client in
        try await body("http://127.0.0.1:\(client.port!)", path)
    }
}

/// Collects what a tail receives.
actor Received {
    var events: [TailEvent] = []
    var notices: [String] = []
    func add(_ event: TailEvent) { events.append(event) }
    func note(_ text: String) { notices.append(text) }
}

@Suite("rewind publish and tail against a server")
struct ClientTests {
    @Test func publishThenTailInEveryFormat() async throws {
        try await withServer { base, path in
            let client = try ServerClient(server: base)
            let one = try await client.publish(stream: "orders", data: "first\nsecond line", type: "order.created", idempotencyKey: nil)
            #expect(one.firstID == 1 && one.lastID == 1 && !one.replayed)
            let batch = try await client.publish(stream: "orders", lines: ["a", "b", #"{"not":"parsed"}"#], type: nil, idempotencyKey: "k1")
            #expect(batch.firstID == 2 && batch.lastID == 4)
            let again = try await client.publish(stream: "orders", lines: ["a", "b", #"{"not":"parsed"}"#], type: nil, idempotencyKey: "k1")
            #expect(again.replayed && again.firstID == 2, "the same key appends nothing")
            _ = try await client.publish(stream: "audit.eu", data: "elsewhere", type: nil, idempotencyKey: nil)
            // What was published is in the log, byte for byte.
            let stored = try LogReader(path: path).events(EventQuery()).map(\.event)
            #expect(stored.map(\.data) == ["first\nsecond line", "a", "b", #"{"not":"parsed"}"#, "elsewhere"])
            #expect(stored.map(\.type) == ["order.created", "message", "message", "message", "message"])
            #expect(stored.allSatisfy { !$0.isJSON })

            var options = TailOptions(streams: ["orders", "audit.*"])
            options.from = "earliest"
            options.follow = false
            let received = Received()
            try await client.tail(options, notice: { _ in }) { await received.add($0) }
            #expect(await received.events.map(\.id) == ["1", "2", "3", "4", "5"])
            #expect(await received.events.first?.data == "first\nsecond line")
            options.from = "2"
            options.types = ["message"]
            let later = Received()
            try await client.tail(options, notice: { _ in }) { await later.add($0) }
            #expect(await later.events.map(\.id) == ["3", "4", "5"])

            // The binary, in each format.
            let ndjson = try rewind(["tail", "orders", "--from", "3", "--no-follow", "--format", "ndjson"], environment: ["REWIND_SERVER": base])
            #expect(ndjson.status == 0, "\(ndjson.stderr)")
            #expect(ndjson.stdout == #"{"id":4,"type":"message","data":"{\"not\":\"parsed\"}"}"# + "\n")
            let text = try rewind(["tail", "orders", "--from", "earliest", "--no-follow", "--format", "text", "--server", base])
            #expect(text.stdout == "1  order.created  first\\nsecond line\n2  message  a\n3  message  b\n4  message  {\"not\":\"parsed\"}\n")
            let data = try rewind(["tail", "orders", "--from", "1", "--no-follow", "--format", "data", "--type", "message", "--server", base])
            #expect(data.stdout == "a\nb\n{\"not\":\"parsed\"}\n")
            let published = try rewind(["publish", "chat", "--server", base, "--batch", "2", "--type", "line"], stdin: "x\ny\nz\n")
            #expect(published.status == 0, "\(published.stderr)")
            #expect(published.stdout.split(separator: "\n").count == 2)
            #expect(
                try LogReader(path: path).events(
                    {
                        var q = EventQuery(); q.streams = ["chat"]; return q
                    }()
                ).map(\.event.data) == ["x", "y", "z"]
            )
            let refused = try rewind(["publish", "bad name", "x", "--server", base])
            #expect(refused.status == 1)
            #expect(refused.stderr.hasPrefix("rewind: publish to bad name answered 400"), "\(refused.stderr)")
        }
    }

    @Test func tailFollowsLiveEventsFromTheHead() async throws {
        try await withServer { base, path in
            let client = try ServerClient(server: base)
            _ = try await client.publish(stream: "live", data: "before", type: nil, idempotencyKey: nil)
            let received = Received()
            let tail = Task {
                try await client.tail(TailOptions(streams: ["live"]), notice: { text in Task { await received.note(text) } }) {
                    await received.add($0)
                }
            }
            // Only new events (from latest), as they are committed.
            try await Task.sleep(for: .milliseconds(300))
            for n in 1...5 { _ = try await client.publish(stream: "live", data: "n\(n)", type: nil, idempotencyKey: nil) }
            let deadline = ContinuousClock.now + .seconds(20)
            while await received.events.count < 5, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            tail.cancel()
            _ = await tail.result
            #expect(await received.events.map(\.data) == ["n1", "n2", "n3", "n4", "n5"])
            #expect(try LogReader(path: path).stats().events == 6)
        }
    }
}
