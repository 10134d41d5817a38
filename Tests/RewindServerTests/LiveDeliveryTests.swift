import Foundation
import NIOHTTP1
import RewindCore
import RewindServer
import Synchronization
import Testing

/// Caught-up subscribers are written from their connection's event loop; one whose client stops reading leaves that
/// path for its own task and catches up from the window, then from the log.
@Suite("Live delivery from the event loop")
struct LiveDeliveryTests {
    /// The events of an SSE response as a raw socket received them: the body's chunks decoded, then parsed.
    static func events(in bytes: [UInt8]) -> [SSEParser.Message] {
        guard let end = bytes.firstRange(of: Array("\r\n\r\n".utf8))?.upperBound else { return [] }
        var body: [UInt8] = []
        var index = end
        while true {
            guard let lineEnd = bytes[index...].firstRange(of: Array("\r\n".utf8)),
                let size = Int(String(decoding: bytes[index..<lineEnd.lowerBound], as: UTF8.self), radix: 16),
                lineEnd.upperBound + size + 2 <= bytes.count
            else { break }
            body += bytes[lineEnd.upperBound..<lineEnd.upperBound + size]
            index = lineEnd.upperBound + size + 2
        }
        var parser = SSEParser()
        return parser.feed(body)
    }

    /// A subscriber whose socket stops being read while others are fed loses nothing: once it reads again it gets
    /// every event, in order, once; meanwhile the others get every event without waiting for it. With a window of
    /// 64 events it falls out of the window and catches up from the log; with the default one, from the window.
    @Test(arguments: [16_384, 64])
    func aStalledReaderLosesNothingAndHoldsUpNobody(windowEvents: Int) async throws {
        try await withRewind({ $0.windowEvents = windowEvents }) { server in
            // Far more than the socket buffers of both ends hold, so the stalled connection stops being writable.
            let count = 600
            let payload = String(repeating: "x", count: 16_000)
            // A small receive buffer, so the stalled client's side fills after little data.
            let stalled = try RawSocket(port: server.port, receiveBuffer: 4096)
            try stalled.send("GET /v1/streams/live/events HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n")
            let prelude = await stalled.receive(seconds: 10) { String(decoding: $0, as: UTF8.self).contains(": rewind") }
            #expect(String(decoding: prelude, as: UTF8.self).hasPrefix("HTTP/1.1 200"))
            let followers = (0..<3).map { _ in
                Task {
                    try await server.sse("/v1/streams/live/events", timeout: .seconds(120)) { $0.ids.count >= count }.ids
                }
            }
            // Every follower connected and caught up (its prelude is written once it is), so each gets all events.
            try await withDeadline(.seconds(10), "the followers to connect") {
                while true {
                    let text = try PrometheusText(try await server.request(.GET, "/metrics").body)
                    if text.subscribers == 4 { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            try await Task.sleep(for: .milliseconds(200))
            var published: [Int64] = []
            for _ in 0..<(count / 20) {
                published += try await server.publishTexts("live", Array(repeating: payload, count: 20))
            }
            #expect(published == Array(1...Int64(count)))
            // The others get everything while the stalled one has not read a byte since its prelude.
            for follower in followers {
                #expect(try await follower.value == published)
            }
            // It reads again: every event, in order, once.
            let last = Array("id: \(count)\n".utf8)
            let rest = await stalled.receive(seconds: 60) { received in
                // Cheap to ask after every read: the last event's id line in what came last, and its chunk's end.
                received.suffix(payload.utf8.count + 64).firstRange(of: last) != nil && received.suffix(2) == [13, 10]
            }
            let ids = Self.events(in: prelude + rest).compactMap { Int64($0.lastEventID) }
            #expect(ids == published, "\(sequenceMismatch(received: ids, expected: published) ?? "")")
            // And it stays live: the next event comes too.
            let next = try await server.publishTexts("live", ["after"])
            let more = await stalled.receive(seconds: 10) { $0.firstRange(of: Array("id: \(next[0])\n".utf8)) != nil && $0.suffix(2) == [13, 10] }
            #expect(Self.events(in: prelude + rest + more).last?.lastEventID == String(next[0]))
        }
    }
}
