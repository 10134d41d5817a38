import DequeModule
import NIOCore
import RewindCore
import Synchronization

/// The most recently committed events, each with its SSE frame encoded once and shared by every subscriber.
///
/// Subscribers keep no queue of their own, only a position; a caught-up subscriber takes what follows its position
/// from here. The window is bounded by count and bytes: a subscriber whose position falls before its start (a
/// slow reader, or one replaying history) reads from the log instead and comes back when it has caught up.
/// The window is complete over its range: it holds every event with an id in `(start, last]`.
final class RecentEvents: Sendable {
    struct Entry: Sendable {
        var id: Int64
        var stream: String
        var type: String
        var frame: ByteBuffer
        /// When the window took the event, just after its commit: the start of `rewind_delivery_lag_seconds`.
        var committed: ContinuousClock.Instant
    }

    private struct State {
        var entries: Deque<Entry> = []
        var bytes = 0
        /// Every event with an id in `(start, last]` is in `entries`.
        var start: Int64
        var last: Int64
    }

    private let state: Mutex<State>
    let maxEvents: Int
    let maxBytes: Int

    init(head: Int64, maxEvents: Int, maxBytes: Int) {
        state = Mutex(State(start: head, last: head))
        self.maxEvents = max(1, maxEvents)
        self.maxBytes = max(1, maxBytes)
    }

    /// Adds events that follow `previousHead` in the log: a commit of this process, or the newest events of other
    /// nodes' commits that `catchUp` read. The window only ever holds a gap-free run of the log, whatever order
    /// these calls come in: events it already holds are skipped, and an event that does not follow the window's
    /// last id directly (another node committed in between and this process has not read those events yet, or
    /// they were deleted) restarts the window at that event, since it cannot hold the events it never saw. A
    /// subscriber positioned before the restart reads the log, which has them.
    func append(previousHead: Int64, events: [Event]) {
        guard !events.isEmpty else { return }
        var added: [Entry] = []
        added.reserveCapacity(events.count)
        let committed = ContinuousClock.now
        for event in events {
            var frame: [UInt8] = []
            frame.reserveCapacity(event.data.utf8.count + event.type.utf8.count + 32)
            SSEEncoder.appendFrame(id: event.id, type: event.type, data: event.data, to: &frame)
            added.append(Entry(id: event.id, stream: event.stream, type: event.type, frame: ByteBuffer(bytes: frame), committed: committed))
        }
        state.withLock { state in
            var expected = previousHead + 1
            for entry in added {
                defer { expected = entry.id + 1 }
                guard entry.id > state.last else { continue }
                if entry.id != state.last + 1 || entry.id != expected {
                    state.entries.removeAll()
                    state.bytes = 0
                    state.start = entry.id - 1
                }
                state.entries.append(entry)
                state.bytes += entry.frame.readableBytes
                state.last = entry.id
            }
            while state.entries.count > maxEvents || (state.bytes > maxBytes && state.entries.count > 1) {
                let dropped = state.entries.removeFirst()
                state.bytes -= dropped.frame.readableBytes
                state.start = dropped.id
            }
        }
    }

    /// The ids the window covers, `(start, last]`, and the ids it holds, for tests of its invariant.
    var contents: (start: Int64, last: Int64, ids: [Int64]) {
        state.withLock { ($0.start, $0.last, $0.entries.map(\.id)) }
    }

    /// What a subscriber takes from the window in one turn.
    struct Batch {
        var frames: [ByteBuffer]
        /// Every matching event up to here is in `frames`; the subscriber's next position.
        var through: Int64
        /// True when the batch reached the window's last event.
        var complete: Bool
        /// When the newest event in `frames` was committed.
        var newestCommit: ContinuousClock.Instant?
    }

    /// Frames as one buffer for one write (the buffer itself when there is one; nil for none): one buffer through
    /// the HTTP pipeline costs less than a pass per frame, so the shared frames are copied.
    static func joined(_ frames: [ByteBuffer]) -> ByteBuffer? {
        guard frames.count > 1 else { return frames.first }
        var joined = ByteBuffer()
        joined.reserveCapacity(frames.reduce(0) { $0 + $1.readableBytes })
        for frame in frames { joined.writeImmutableBuffer(frame) }
        return joined
    }

    /// The frames of up to `limit` events after `position` that pass `filter`; nil when `position` lies before the
    /// window (or its events are not where they should be), so the caller must read from the log.
    func frames(after position: Int64, filter: EventFilter, limit: Int, maxBytes: Int) -> Batch? {
        state.withLock { state in
            guard position >= state.start else { return nil }
            guard position < state.last else { return Batch(frames: [], through: position, complete: true) }
            // Ids in the window are consecutive, so the first event after `position` is found by subtraction.
            var index = Int(position - state.start)
            guard index < state.entries.count, state.entries[index].id == position + 1 else { return nil }
            var frames: [ByteBuffer] = []
            var bytes = 0
            var through = position
            var newestCommit: ContinuousClock.Instant?
            while index < state.entries.count, frames.count < limit, bytes < maxBytes {
                let entry = state.entries[index]
                if filter.matches(stream: entry.stream, type: entry.type) {
                    frames.append(entry.frame)
                    bytes += entry.frame.readableBytes
                    newestCommit = entry.committed
                }
                through = entry.id
                index += 1
            }
            return Batch(frames: frames, through: through, complete: index == state.entries.count, newestCommit: newestCommit)
        }
    }

    /// Drops the events up to `id`, the log's new pruning horizon (pruning or a stream's deletion, by any process):
    /// the log no longer has some of them, and the window must not hand out what a reader of the log would be told
    /// is gone. Subscribers whose position falls before the window then read the log, which signals the gap.
    func drop(through id: Int64) {
        state.withLock { state in
            while let first = state.entries.first, first.id <= id {
                state.bytes -= first.frame.readableBytes
                state.start = first.id
                state.entries.removeFirst()
            }
            if state.entries.isEmpty, id > state.start {
                state.start = max(state.start, min(id, state.last))
            }
        }
    }
}
