import Hummingbird
import NIOCore
import RewindCore
import RewindStore

/// One SSE subscriber: replays from its cursor, then follows the log live, on one connection.
///
/// There is a single loop and a single position. Each turn reads the next page after the position from the log
/// and advances the position to what the page covered; when a page comes back short the subscriber is caught up
/// and waits for the head to pass its position. Replay and live are the same code path, which is why no event can
/// fall between them or come twice, however fast events commit meanwhile.
struct EventStreamSession: Sendable {
    let log: EventLog
    let selector: StreamSelector
    let types: [String]
    /// Every matching event with an id up to here was sent (or lay before the cursor).
    var position: Int64
    let limit: Int?
    let live: Bool
    let heartbeat: Duration
    /// Events read from the log per page.
    var pageSize = 1000

    init(log: EventLog, selector: StreamSelector, types: [String], position: Int64, limit: Int?, live: Bool, heartbeat: Duration) {
        self.log = log
        self.selector = selector
        self.types = types
        self.position = position
        self.limit = limit
        self.live = live
        self.heartbeat = heartbeat
    }

    mutating func run(writer: inout any ResponseBodyWriter, retryMilliseconds: Int) async throws {
        var prelude: [UInt8] = []
        SSEEncoder.appendRetry(milliseconds: retryMilliseconds, to: &prelude)
        SSEEncoder.appendComment("rewind", to: &prelude)
        prelude.append(UInt8(ascii: "\n"))
        try await writer.write(ByteBuffer(bytes: prelude))
        var lastWrite = ContinuousClock.now
        var sent = 0
        var frames: [UInt8] = []
        while true {
            let want = limit.map { min(pageSize, $0 - sent) } ?? pageSize
            let page = try await log.read(ReadQuery(after: position, streams: selector, types: types, limit: want))
            if !page.events.isEmpty {
                frames.removeAll(keepingCapacity: true)
                for event in page.events {
                    SSEEncoder.appendFrame(id: event.id, type: event.type, data: event.data, to: &frames)
                }
                try await writer.write(ByteBuffer(bytes: frames))
                lastWrite = .now
                sent += page.events.count
            }
            position = page.scannedThrough
            if let limit, sent >= limit { return }
            if page.events.count == want { continue }
            // Caught up with the log.
            if !live { return }
            waiting: while true {
                switch await log.commits.wait(after: position) {
                case .commit:
                    break waiting
                case .tick:
                    if ContinuousClock.now - lastWrite >= heartbeat {
                        try await writer.write(ByteBuffer(bytes: Self.heartbeatLine))
                        lastWrite = .now
                    }
                case .closed:
                    return
                }
            }
        }
    }

    private static let heartbeatLine: [UInt8] = Array(":\n".utf8)
}
