import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import RewindCore
import RewindStore
import Synchronization

/// Caught-up SSE subscribers, written from the event loop that owns their connection.
///
/// A subscriber that has caught up hands itself (its position, filter and bookkeeping) to the set of its channel's
/// event loop and suspends. Each new head costs one `execute` per event loop, not a task wake-up per subscriber: the
/// loop's pass takes the frames after each member's position from the shared window (frames are encoded once and
/// shared, and members at the same position with the same filter share one read), writes them to the member's
/// channel and flushes. A member the pass cannot serve there leaves the set and its task resumes where the member's
/// position stands, doing what a subscriber waiting on `CommitHub` does when woken: read the window, else the log.
/// That happens when its channel is not writable (the task's writes then wait for the socket, so memory stays
/// bounded by the socket buffer and the window: no queue is kept per subscriber), when the window no longer holds its
/// position or lacks events the head has (other processes' commits), when its `limit` would be reached, its token
/// has expired, a stream was deleted, or the hub closed.
///
/// Position bookkeeping stays exact because each member has exactly one owner at a time, and hand-overs are ordered
/// on the event loop: the task gives the member to the loop with `execute` after its last write returned, and the
/// loop gives it back by resuming the task after its last write. See `follow` for why the bytes of both writers
/// reach the socket in that same order.
///
/// HTTP/2 streams are not served here (their subscribers keep waiting on `CommitHub`): only HTTP/1.1 channels,
/// whose pipeline takes Hummingbird's `HTTPResponsePart` at its tail, are.
final class LiveSubscribers: Sendable {
    let recent: RecentEvents
    let hub: CommitHub
    let metrics: ServerMetrics
    private let loops = Mutex<[LiveLoop]>([])

    init(recent: RecentEvents, hub: CommitHub, metrics: ServerMetrics) {
        self.recent = recent
        self.hub = hub
        self.metrics = metrics
    }

    /// The set of one event loop, made the first time a subscriber of that loop catches up.
    func loop(for eventLoop: any EventLoop) -> LiveLoop {
        loops.withLock { loops in
            if let loop = loops.first(where: { $0.eventLoop === eventLoop }) { return loop }
            let loop = LiveLoop(eventLoop: eventLoop, owner: self)
            loops.append(loop)
            return loop
        }
    }

    /// Follows the hub (see `CommitHub.onChange`): a new head or a tick is one pass per event loop.
    func hubChanged(_ change: CommitHub.Change) {
        let loops = self.loops.withLock { $0 }
        switch change {
        case .head: for loop in loops { loop.schedulePass() }
        case .tick: for loop in loops { loop.scheduleTick() }
        case .closed: for loop in loops { loop.closeAll() }
        }
    }
}

/// What a subscriber hands to its event loop's set while it is caught up, and gets back when its task resumes.
struct LiveMember: Sendable {
    /// The subscriber's identity in `CommitHub`, so its client going away finds it here too.
    let subscriber: Int
    let channel: any Channel
    let filter: EventFilter
    /// Every matching event with an id up to here was sent.
    var position: Int64
    /// Events the subscription may still send under its `limit`.
    var remaining: Int?
    let expires: ContinuousClock.Instant?
    let heartbeat: Duration
    var lastWrite: ContinuousClock.Instant
    /// The hub's count of stream deletions the task has checked the subscription against.
    let deletionsSeen: Int
    let pageSize: Int
    let maxWriteBytes: Int
    var metrics: ServerMetrics.SubscriberState
    /// Events written while in the set.
    var sent = 0
}

/// The caught-up subscribers of one event loop. Everything but the two atomics is touched only on that loop.
final class LiveLoop: @unchecked Sendable {
    let eventLoop: any EventLoop
    private let recent: RecentEvents
    private let hub: CommitHub
    private let metrics: ServerMetrics

    private struct Entry {
        var member: LiveMember
        var continuation: CheckedContinuation<(CommitHub.Wake, LiveMember), Never>
        /// The context of the channel's HTTP/1.1 response encoder, when its pipeline has one: frames are written
        /// through it, already framed as chunks, to skip the HTTP handlers above it (see `write`).
        var encoder: ChannelHandlerContext?
    }

    /// Members in no particular order; `slots` finds one by subscriber.
    private var entries: [Entry] = []
    private var slots: [Int: Int] = [:]
    /// True from scheduling a pass until it starts: heads announced meanwhile are seen by that pass, since it reads
    /// the head after clearing this, and an announcement sets the head before looking at this.
    private let passQueued = Atomic<Bool>(false)

    fileprivate init(eventLoop: any EventLoop, owner: LiveSubscribers) {
        self.eventLoop = eventLoop
        self.recent = owner.recent
        self.hub = owner.hub
        self.metrics = owner.metrics
    }

    /// Hands a caught-up subscriber to this loop and suspends until the loop gives it back, with why: `.commit`
    /// when the task must read (the window or the log) for it, `.tick` when it must check deletions, its token's
    /// expiry or send a heartbeat the loop could not, `.closed` when it must end.
    ///
    /// Ordering of the bytes: the task's writes go through Hummingbird's `NIOAsyncChannelOutboundWriter`, whose
    /// `write` returns only once the part was handed to the channel handler's delegate, which writes it at once when
    /// on the event loop or else enqueues that write there with `execute`. The join below is enqueued after that
    /// write returned, so on the loop, which runs what is enqueued in order, the task's last write comes first. The
    /// loop's own writes all happen between the join and the hand-back, while the task is suspended, and the task's
    /// next write is enqueued after it resumed. Both writers enter the pipeline at its tail (the async channel's
    /// handler does not intercept writes; the loop's writes enter lower down, see `write`), so the socket sees the
    /// bytes in that order; the response head before, the body's `.end` after, since Hummingbird writes them around
    /// the body closure.
    func follow(_ member: LiveMember) async -> (CommitHub.Wake, LiveMember) {
        let subscriber = member.subscriber
        let cancelled = CancellationFlag()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                eventLoop.execute { self.join(member, cancelled: cancelled, continuation) }
            }
        } onCancel: {
            // Set before the close is enqueued: either the join sees it, or the close runs after the join.
            cancelled.value.store(true, ordering: .sequentiallyConsistent)
            close(subscriber: subscriber)
        }
    }

    /// The subscriber's client went away (after `CommitHub.closeSubscriber`, which a join that has not run yet
    /// sees), or its task was cancelled: its task resumes with `.closed`.
    func close(subscriber: Int) {
        eventLoop.execute { self.handBack(subscriber, .closed) }
    }

    /// A new head: one pass over the members, unless one is queued already and has not started.
    func schedulePass() {
        guard !passQueued.exchange(true, ordering: .sequentiallyConsistent) else { return }
        eventLoop.execute {
            self.passQueued.store(false, ordering: .sequentiallyConsistent)
            self.pass(tick: false)
        }
    }

    /// A tick of the hub: deadlines, deletions and heartbeats are looked at in one pass.
    func scheduleTick() {
        eventLoop.execute { self.pass(tick: true) }
    }

    /// The hub closed: every member's task resumes with `.closed`.
    func closeAll() {
        eventLoop.execute {
            while let last = self.entries.last { self.handBack(last.member.subscriber, .closed) }
        }
    }

    private func join(
        _ member: LiveMember,
        cancelled: CancellationFlag,
        _ continuation: CheckedContinuation<(CommitHub.Wake, LiveMember), Never>
    ) {
        eventLoop.preconditionInEventLoop()
        // Closing (the hub, or the subscriber) is recorded in the hub before the loops are asked to close their
        // members: either it is seen here, or that request runs after this join.
        if hub.isClosed || hub.isClosed(subscriber: member.subscriber) || cancelled.value.load(ordering: .sequentiallyConsistent) {
            continuation.resume(returning: (.closed, member))
            return
        }
        slots[member.subscriber] = entries.count
        let encoder = try? member.channel.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
        entries.append(Entry(member: member, continuation: continuation, encoder: encoder))
        // A head announced before this join ran is not seen by the pass it caused: the head read here is. One
        // announced later is seen by its pass (`schedulePass`).
        let index = entries.count - 1
        var cache = WindowCache()
        if let wake = step(&entries[index], head: hub.head, deletions: hub.deletionCount, now: .now, tick: false, cache: &cache) {
            handBack(member.subscriber, wake)
        }
    }

    /// One pass over the members: each gets what the window holds after its position, or is handed back.
    private func pass(tick: Bool) {
        guard !entries.isEmpty else { return }
        let head = hub.head
        let deletions = hub.deletionCount
        let now = ContinuousClock.now
        var cache = WindowCache()
        var index = 0
        while index < entries.count {
            if let wake = step(&entries[index], head: head, deletions: deletions, now: now, tick: tick, cache: &cache) {
                // The last entry moves into this slot: look at the same index again.
                handBack(entries[index].member.subscriber, wake)
            } else {
                index += 1
            }
        }
    }

    /// What one member needs now; nil when it stays in the set.
    private func step(
        _ entry: inout Entry,
        head: Int64,
        deletions: Int,
        now: ContinuousClock.Instant,
        tick: Bool,
        cache: inout WindowCache
    ) -> CommitHub.Wake? {
        let channel = entry.member.channel
        guard channel.isActive else { return .closed }
        if deletions != entry.member.deletionsSeen { return .tick }
        if let expires = entry.member.expires, now >= expires { return .tick }
        if entry.member.position < head {
            // A channel that is not writable is left to its task, whose writes wait for the socket.
            guard channel.isWritable else { return .commit }
            let want = entry.member.remaining.map { min(entry.member.pageSize, $0) } ?? entry.member.pageSize
            guard
                let read = cache.read(
                    recent,
                    after: entry.member.position,
                    filter: entry.member.filter,
                    limit: want,
                    maxBytes: entry.member.maxWriteBytes,
                    framed: entry.encoder != nil
                )
            else { return .commit }
            // The task writes the events that reach the limit, then ends the stream.
            if let remaining = entry.member.remaining, read.events >= remaining { return .commit }
            metrics.readWindow(&entry.member.metrics)
            if let body = read.body {
                write(body, chunk: read.chunk, to: entry)
                let written = ContinuousClock.now
                entry.member.lastWrite = written
                entry.member.sent += read.events
                entry.member.remaining = entry.member.remaining.map { $0 - read.events }
                metrics.delivered(read.events, newestCommit: read.newestCommit, written: written, state: entry.member.metrics)
            }
            entry.member.position = read.through
            // More than one page, or events the window lacks (another process committed them): the task reads on.
            if !read.complete || entry.member.position < head { return .commit }
        }
        if tick, now - entry.member.lastWrite >= entry.member.heartbeat {
            guard channel.isWritable else { return .tick }
            write(Self.heartbeatLine, chunk: Self.heartbeatChunk, to: entry)
            entry.member.lastWrite = now
        }
        return nil
    }

    /// Writes body bytes and flushes. Through the response encoder's context when there is one: `chunk` is `body`
    /// framed as one HTTP/1.1 chunk, which is what the encoder would write (a response with a body and no length,
    /// which Hummingbird's HTTP/1.1 codec always sends as HTTP/1.1, is chunked; a `HEAD` request never gets here).
    /// The handlers above the encoder keep no writes back (each passes a write on as it comes), so bytes written
    /// there still follow every part written at the tail before. Else as a body part at the pipeline's tail.
    private func write(_ body: ByteBuffer, chunk: ByteBuffer?, to entry: Entry) {
        if let encoder = entry.encoder, let chunk {
            encoder.write(NIOAny(IOData.byteBuffer(chunk)), promise: nil)
            encoder.flush()
        } else {
            entry.member.channel.write(HTTPResponsePart.body(body), promise: nil)
            entry.member.channel.flush()
        }
    }

    /// Takes the subscriber out of the set and resumes its task.
    private func handBack(_ subscriber: Int, _ wake: CommitHub.Wake) {
        guard let index = slots.removeValue(forKey: subscriber) else { return }
        let entry = entries[index]
        let last = entries.removeLast()
        if index < entries.count {
            entries[index] = last
            slots[last.member.subscriber] = index
        }
        entry.continuation.resume(returning: (wake, entry.member))
    }

    private static let heartbeatLine = ByteBuffer(bytes: Array(":\n".utf8))
    private static let heartbeatChunk = WindowCache.chunk(heartbeatLine)
}

/// Set when the task following in the live set was cancelled; shared by its cancellation handler and its join.
private final class CancellationFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// The last read from the window within one pass: members at the same position with the same filter (the common
/// case: every subscriber of a stream after one commit) share it and the buffer joined from its frames.
private struct WindowCache {
    struct Read {
        /// The frames as one buffer; nil when no event matched.
        var body: ByteBuffer?
        /// `body` framed as an HTTP/1.1 chunk, when asked for.
        var chunk: ByteBuffer?
        var events: Int
        var through: Int64
        var complete: Bool
        var newestCommit: ContinuousClock.Instant?
    }

    private var key: (position: Int64, filter: EventFilter, limit: Int, maxBytes: Int)?
    private var value: Read?

    /// Nil when the window does not hold the position. `framed` asks for the chunk too.
    mutating func read(
        _ recent: RecentEvents,
        after position: Int64,
        filter: EventFilter,
        limit: Int,
        maxBytes: Int,
        framed: Bool
    ) -> Read? {
        if let key, key.position == position, key.limit == limit, key.maxBytes == maxBytes, key.filter == filter {
            if framed, var read = value, read.chunk == nil, let body = read.body {
                read.chunk = Self.chunk(body)
                value = read
            }
            return value
        }
        key = (position, filter, limit, maxBytes)
        value = recent.frames(after: position, filter: filter, limit: limit, maxBytes: maxBytes).map { batch in
            let body = RecentEvents.joined(batch.frames)
            return Read(
                body: body,
                chunk: framed ? body.map(Self.chunk) : nil,
                events: batch.frames.count,
                through: batch.through,
                complete: batch.complete,
                newestCommit: batch.newestCommit
            )
        }
        return value
    }

    /// `body` as one chunk of HTTP/1.1's chunked transfer coding: its size in hex, CRLF, the bytes, CRLF.
    static func chunk(_ body: ByteBuffer) -> ByteBuffer {
        let size = String(body.readableBytes, radix: 16)
        var chunk = ByteBuffer()
        chunk.reserveCapacity(size.utf8.count + body.readableBytes + 4)
        chunk.writeString(size)
        chunk.writeStaticString("\r\n")
        chunk.writeImmutableBuffer(body)
        chunk.writeStaticString("\r\n")
        return chunk
    }
}
