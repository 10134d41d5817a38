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

@Suite("Maintenance by another process reaches a running server")
struct ExternalMaintenanceTests {
    /// The other process is a second log on the server's database (`server.withExternalLog`): another writer of the
    /// SQLite file, as `rewind prune --db` is, or another node on the same PostgreSQL database.
    @Test(arguments: Backend.all) func deletionAndPruningByAnotherProcessAreSeen(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let doomed = try await server.publishTexts("doomed", ["d1", "d2"])
            let kept = try await server.publishTexts("p", (1...10).map { "p\($0)" })
            _ = try await server.publishTexts("other", ["o"])
            // Every event above is in the server's window of recent events.
            let doomedSubscriber = Task {
                try await server.sse("/v1/streams/doomed/events", headers: [("Last-Event-ID", "0")], timeout: .seconds(20))
            }
            let receivedLive = Flag()
            let liveSubscriber = Task {
                try await server.sse("/v1/streams/p/events", headers: [("Last-Event-ID", String(kept[9]))], timeout: .seconds(20)) { stream in
                    if !stream.messages.isEmpty { _ = receivedLive.set() }
                    return !stream.messages.isEmpty
                }
            }
            try await Task.sleep(for: .milliseconds(300))
            try await server.withExternalLog { external in
                // A deletion by another process: nothing else reaches the server meanwhile, so only its watch of the
                // log can end the subscription.
                let deletedAt = ContinuousClock.now
                #expect(try await external.deleteStream("doomed"))
                let ended = try await withDeadline(.seconds(3), "the deleted stream's subscriber to be closed") {
                    try await doomedSubscriber.value
                }
                let closedAfter = ContinuousClock.now - deletedAt
                #expect(ended.ids == doomed, "the open stream got its events, then was closed")
                #expect(closedAfter < .seconds(2), "closed after \(closedAfter)")
                let reconnect = try await server.request(
                    .GET,
                    "/v1/streams/doomed/events",
                    headers: [("Accept", "text/event-stream"), ("Last-Event-ID", String(doomed[1]))]
                )
                #expect(reconnect.status == 204)

                // Pruning by another process, and a subscriber behind the new horizon connecting at once.
                let report = try await external.prune(RetentionPolicy(defaults: .init(maxEvents: 3)), now: .now(), chunk: 10_000)
                let horizon = try #require(report.streams["p"])
                #expect(horizon == kept[6])
                let pruned = Set(kept.filter { $0 <= horizon } + doomed)
                let behind = try await server.sse("/v1/streams/p/events?live=false", headers: [("Last-Event-ID", String(kept[1]))])
                #expect(behind.messages.map(\.type) == ["rewind.gap", "message", "message", "message"])
                let signal = (try? JSONSerialization.jsonObject(with: Data(behind.messages[0].data.utf8))) as? [String: Int]
                #expect(signal == ["after": Int(kept[1]), "earliest": Int(kept[7])])
                #expect(behind.ids == Array(kept[7...]))
                let everything = try await server.sse("/v1/events?stream=*&live=false", headers: [("Last-Event-ID", "0")])
                #expect(everything.messages.first?.type == "rewind.gap")
                #expect(pruned.isDisjoint(with: everything.ids), "pruned ids served: \(pruned.intersection(everything.ids).sorted())")
                #expect(everything.ids == Array(kept[7...]) + [kept[9] + 1])

                // A live subscriber of the pruned stream is neither closed nor disturbed: it gets what comes next.
                #expect(!receivedLive.isSet)
                let next = try await server.publishTexts("p", ["after"])
                let live = try await liveSubscriber.value
                #expect(live.ids == next)
            }
        }
    }
}
