import NIOCore
import RewindCore
import Testing

@testable import RewindServer

/// The shared window of recent events on its own: what it holds, what it hands out, and when it sends a subscriber
/// to the log instead.
@Suite("Window of recent events")
struct RecentEventsTests {
    private func events(_ ids: ClosedRange<Int64>, stream: String = "s", type: String = "message") -> [Event] {
        ids.map { Event(id: $0, stream: stream, type: type, data: "e\($0)", isJSON: false, time: Timestamp(microseconds: $0), key: nil) }
    }

    private func text(_ batch: RecentEvents.Batch?) -> String {
        (batch?.frames ?? []).map { String(buffer: $0) }.joined()
    }

    private let everything = try! EventFilter(patterns: ["*"])

    @Test("hands out the frames after a position inside it, and says when it reached its end")
    func handsOutWhatFollowsAPosition() throws {
        let window = RecentEvents(head: 0, maxEvents: 100, maxBytes: 1 << 20)
        window.append(previousHead: 0, events: events(1...5))
        let batch = try #require(window.frames(after: 2, filter: everything, limit: 10, maxBytes: 1 << 20))
        #expect(text(batch) == "id: 3\ndata: e3\n\nid: 4\ndata: e4\n\nid: 5\ndata: e5\n\n")
        #expect(batch.through == 5)
        #expect(batch.complete)
        let partial = try #require(window.frames(after: 0, filter: everything, limit: 2, maxBytes: 1 << 20))
        #expect(partial.through == 2)
        #expect(!partial.complete)
        let caughtUp = try #require(window.frames(after: 5, filter: everything, limit: 10, maxBytes: 1 << 20))
        #expect(caughtUp.frames.isEmpty && caughtUp.complete && caughtUp.through == 5)
    }

    @Test("a filter skips events but the position still moves past them")
    func filteredEventsMoveThePosition() throws {
        let window = RecentEvents(head: 0, maxEvents: 100, maxBytes: 1 << 20)
        window.append(previousHead: 0, events: events(1...2, stream: "a") + events(3...4, stream: "b"))
        let batch = try #require(window.frames(after: 0, filter: try EventFilter(patterns: ["b"]), limit: 10, maxBytes: 1 << 20))
        #expect(text(batch) == "id: 3\ndata: e3\n\nid: 4\ndata: e4\n\n")
        #expect(batch.through == 4)
    }

    @Test("bounded by count and bytes: a position before its start is sent to the log")
    func boundedByCountAndBytes() {
        let counted = RecentEvents(head: 0, maxEvents: 3, maxBytes: 1 << 20)
        counted.append(previousHead: 0, events: events(1...10))
        #expect(counted.contents.start == 7 && counted.contents.ids == [8, 9, 10])
        #expect(counted.frames(after: 6, filter: everything, limit: 10, maxBytes: 1 << 20) == nil)
        #expect(counted.frames(after: 7, filter: everything, limit: 10, maxBytes: 1 << 20) != nil)

        let sized = RecentEvents(head: 0, maxEvents: 100, maxBytes: 40)
        sized.append(previousHead: 0, events: events(1...10))
        #expect(sized.contents.ids.count < 10 && sized.contents.ids.last == 10)
        #expect(sized.contents.start == sized.contents.ids.first! - 1)
    }

    @Test("holds only a gap-free run: an event that does not follow restarts it, one it holds is skipped")
    func holdsOnlyAGapFreeRun() {
        let window = RecentEvents(head: 0, maxEvents: 100, maxBytes: 1 << 20)
        window.append(previousHead: 0, events: events(1...3))
        window.append(previousHead: 5, events: events(6...7))
        #expect(window.contents.start == 5 && window.contents.ids == [6, 7])
        #expect(window.frames(after: 3, filter: everything, limit: 10, maxBytes: 1 << 20) == nil, "4 and 5 were never seen")
        window.append(previousHead: 5, events: events(6...8))
        #expect(window.contents.ids == [6, 7, 8], "what it holds is not taken twice")
    }

    @Test("dropping through a pruning horizon removes what the log no longer has")
    func dropsThroughTheHorizon() {
        let window = RecentEvents(head: 0, maxEvents: 100, maxBytes: 1 << 20)
        window.append(previousHead: 0, events: events(1...5))
        window.drop(through: 3)
        #expect(window.contents.start == 3 && window.contents.ids == [4, 5])
        #expect(window.frames(after: 2, filter: everything, limit: 10, maxBytes: 1 << 20) == nil)
        window.drop(through: 9)
        #expect(window.contents.ids.isEmpty && window.contents.start == 5)
    }
}
