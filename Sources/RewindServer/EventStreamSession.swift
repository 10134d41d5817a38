import CoreMetrics
import Hummingbird
import NIOCore
import Prometheus
import RewindCore
import RewindStore

/// One SSE subscriber: replays from its cursor, then follows the log live, on one connection.
///
/// A subscriber owns a single position and no queue. Each turn takes the events after its position, from the
/// shared window of recent events when the position lies inside it, otherwise from the log in pages, and moves the
/// position to what that turn covered; when caught up it waits for the head to pass its position, on an HTTP/1.1
/// connection by handing its position to the live set of its event loop (`LiveLoop`), which writes new events from
/// the window itself and gives the position back whenever a turn of this loop is needed. Replay and live are one
/// code path, which is why no event can fall between them or come twice, however fast events commit.
/// A slow reader is held back by its socket's backpressure alone; when it resumes behind the window it reads from
/// the log and rejoins the window once caught up.
struct EventStreamSession: Sendable {
    let log: any EventStore
    let recent: RecentEvents
    let metrics: ServerMetrics
    let filter: EventFilter
    /// Every matching event with an id up to here was sent (or lay before the cursor).
    var position: Int64
    let limit: Int?
    let live: Bool
    let heartbeat: Duration
    /// Tell the client with `rewind.gap` when events after its cursor were pruned (only for an explicit cursor:
    /// `from=earliest` asks for whatever is kept).
    let signalGaps: Bool
    /// When the subscriber's token expires: the stream ends then, and a reconnect needs a fresh token.
    let expires: ContinuousClock.Instant?
    /// Stream deletions already known when the subscription started.
    private var deletionsSeen: Int
    /// Events read from the log per page.
    var pageSize = 1000
    /// Most bytes taken from the window for one socket write.
    var maxWriteBytes = 256 << 10

    init(
        log: any EventStore,
        recent: RecentEvents,
        metrics: ServerMetrics,
        filter: EventFilter,
        position: Int64,
        limit: Int?,
        live: Bool,
        heartbeat: Duration,
        signalGaps: Bool,
        expires: ContinuousClock.Instant? = nil
    ) {
        self.expires = expires
        self.signalGaps = signalGaps
        self.deletionsSeen = log.commits.deletionCount
        self.log = log
        self.recent = recent
        self.metrics = metrics
        self.filter = filter
        self.position = position
        self.limit = limit
        self.live = live
        self.heartbeat = heartbeat
    }

    /// - Parameter liveSet: the set of caught-up subscribers of the connection's event loop, and the connection: when
    ///   given, the session waits there (written from the event loop) instead of on `CommitHub`.
    mutating func run(
        writer: inout any ResponseBodyWriter,
        retryMilliseconds: Int,
        subscriber: Int,
        liveSet: (loop: LiveLoop, channel: any Channel)? = nil
    ) async throws {
        var state = metrics.subscriberJoined()
        defer { metrics.subscriberLeft(state) }
        var prelude: [UInt8] = []
        SSEEncoder.appendRetry(milliseconds: retryMilliseconds, to: &prelude)
        // No blank line after these: a blank line ends a block, and several client libraries (httpx-sse among them)
        // report a block holding only `retry:` as an event. Browsers apply `retry:` as soon as the line arrives.
        SSEEncoder.appendComment("rewind", to: &prelude)
        // Catching up with the file first means maintenance another process finished before this subscription
        // started is applied before it reads the window: a reconnect behind a new horizon gets `rewind.gap`, never
        // a pruned event. A cursor beyond the head comes from another log (restored, or foreign): say so and go on
        // from the head. The signal carries the head as its id, so a reconnect before the next event resumes there.
        let head = try await log.catchUp().head
        if position > head {
            SSEEncoder.appendFrame(id: head, type: EventType.reset.rawValue, data: "{\"after\":\(position),\"head\":\(head)}", to: &prelude)
            position = head
            metrics.resetSignals.increment()
        }
        try await writer.write(ByteBuffer(bytes: prelude))
        var lastWrite = ContinuousClock.now
        var sent = 0
        var handoff = SubscriptionHandoff()
        var ahead = PageAhead()
        defer { ahead.cancel() }
        while true {
            if try await endIfExpired(writer: &writer) { return }
            let want = limit.map { min(pageSize, $0 - sent) } ?? pageSize
            let frames: [ByteBuffer]
            let events: Int
            let complete: Bool
            var newestCommit: ContinuousClock.Instant?
            var batch: RecentEvents.Batch?
            let turn = handoff.beginTurn {
                batch = recent.frames(after: position, filter: filter, limit: want, maxBytes: maxWriteBytes)
                return batch != nil
            }
            if turn.source == .window, let batch {
                ahead.cancel()
                frames = batch.frames
                events = batch.frames.count
                complete = batch.complete
                position = batch.through
                newestCommit = batch.newestCommit
                metrics.readWindow(&state)
            } else {
                if turn.fellBehind { metrics.slowReaderFallbacks.increment() }
                metrics.readLog(&state)
                let query = ReadQuery(after: position, filter: filter, limit: want)
                let read: (bytes: [UInt8], page: PageSummary)
                if let page = try await ahead.take(query) {
                    read = page
                } else {
                    read = try await Self.encodedPage(log, query)
                }
                var (bytes, page) = read
                // A full page means more to read: the next page is read and encoded on a reader thread while this
                // one goes to the socket.
                if page.count == want, limit.map({ sent + page.count < $0 }) ?? true {
                    let remaining = limit.map { $0 - sent - page.count }
                    ahead.start(ReadQuery(after: page.scannedThrough, filter: filter, limit: min(pageSize, remaining ?? pageSize)), log)
                }
                if signalGaps, page.prunedThrough > position {
                    // Events after the cursor were pruned: say so, then go on with the earliest one kept.
                    let earliest = page.firstID ?? page.scannedThrough + 1
                    bytes = Self.gapFrame(after: position, earliest: earliest) + bytes
                    metrics.gapSignals.increment()
                }
                frames = bytes.isEmpty ? [] : [ByteBuffer(bytes: bytes)]
                events = page.count
                complete = page.count < want
                position = page.scannedThrough
            }
            if let body = RecentEvents.joined(frames) { try await writer.write(body) }
            if !frames.isEmpty {
                lastWrite = .now
                sent += events
                metrics.delivered(events, newestCommit: newestCommit, written: lastWrite, state: state)
            }
            // Caught up with what this turn looked at? The window lacks events other processes committed, and a log
            // page may predate a commit that finished while it was read: the head says whether to look again.
            let next = handoff.endTurn(
                limitReached: limit.map { sent >= $0 } ?? false,
                complete: complete,
                headAhead: complete && log.commits.head > position,
                live: live
            )
            switch next {
            case .close: return
            case .readAgain: continue
            case .wait: break
            }
            // A deletion announced while this turn ran woke no wait of ours: look before waiting for the next tick.
            if coversNewDeletion() { return }
            waiting: while true {
                let wake: CommitHub.Wake
                if let liveSet {
                    // Caught up: the event loop writes what follows until it hands the subscription back.
                    metrics.woke(&state)
                    let member = LiveMember(
                        subscriber: subscriber,
                        channel: liveSet.channel,
                        filter: filter,
                        position: position,
                        remaining: limit.map { $0 - sent },
                        expires: expires,
                        heartbeat: heartbeat,
                        lastWrite: lastWrite,
                        deletionsSeen: deletionsSeen,
                        pageSize: pageSize,
                        maxWriteBytes: maxWriteBytes,
                        metrics: state
                    )
                    let returned: LiveMember
                    (wake, returned) = await liveSet.loop.follow(member)
                    position = returned.position
                    sent += returned.sent
                    lastWrite = returned.lastWrite
                    state = returned.metrics
                } else {
                    wake = await log.commits.wait(after: position, subscriber: subscriber)
                }
                switch wake {
                case .commit:
                    metrics.woke(&state)
                    break waiting
                case .tick:
                    if coversNewDeletion() { return }
                    if try await endIfExpired(writer: &writer) { return }
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

    /// One page of the log after `query.after`, its frames encoded straight from the store's bytes into one buffer.
    fileprivate static func encodedPage(_ log: any EventStore, _ query: ReadQuery) async throws -> (bytes: [UInt8], page: PageSummary) {
        let (bytes, page) = try await log.scan(query, into: [UInt8]()) { out, event in
            SSEEncoder.appendFrame(id: event.id, type: event.type, data: event.data, to: &out)
        }
        return (bytes, page)
    }

    /// Ends the stream with a comment saying why once the token has expired; checked between pages and on every
    /// heartbeat tick (a quarter of the heartbeat interval).
    private func endIfExpired(writer: inout any ResponseBodyWriter) async throws -> Bool {
        guard let expires, ContinuousClock.now >= expires else { return false }
        try await writer.write(ByteBuffer(bytes: Self.expiredLine))
        return true
    }

    /// True when a stream this subscription names was deleted since it started: the subscription ends.
    private mutating func coversNewDeletion() -> Bool {
        guard log.commits.deletionCount != deletionsSeen else { return false }
        let deleted = log.commits.deletions(after: deletionsSeen)
        deletionsSeen += deleted.count
        return deleted.contains { filter.covers(stream: $0) }
    }

    /// `rewind.gap` without an id: the client's last event id stays its own cursor.
    private static func gapFrame(after: Int64, earliest: Int64) -> [UInt8] {
        var frame: [UInt8] = []
        frame += Array("event: \(EventType.gap.rawValue)\ndata: {\"after\":\(after),\"earliest\":\(earliest)}\n\n".utf8)
        return frame
    }

    private static let expiredLine: [UInt8] = Array(": token expired\n\n".utf8)
    private static let heartbeatLine: [UInt8] = Array(":\n".utf8)
}

/// The next page of a replay, read while the current one is written: a replay then waits for the socket or for the
/// log, not for one after the other. At most one page is read ahead, so a subscriber holds at most two pages.
private struct PageAhead {
    private var query: ReadQuery?
    private var task: Task<(bytes: [UInt8], page: PageSummary), any Error>?

    /// Starts reading the page `query` names.
    mutating func start(_ query: ReadQuery, _ log: any EventStore) {
        cancel()
        self.query = query
        task = Task { try await EventStreamSession.encodedPage(log, query) }
    }

    /// The page read ahead when it is the one `query` asks for; nil (and the page dropped) otherwise.
    mutating func take(_ query: ReadQuery) async throws -> (bytes: [UInt8], page: PageSummary)? {
        guard let task, let ahead = self.query else { return nil }
        self.task = nil
        self.query = nil
        guard ahead.after == query.after, ahead.limit == query.limit else {
            task.cancel()
            return nil
        }
        return try await task.value
    }

    mutating func cancel() {
        task?.cancel()
        task = nil
        query = nil
    }
}
