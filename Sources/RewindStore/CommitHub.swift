import Synchronization

/// Tells subscribers that the log moved: the writer announces each commit's new head here.
///
/// Subscribers never get events through it, only the news that there is something after their cursor; they then
/// read it themselves. A subscriber thus always works from its own cursor, which is what makes the switch from
/// replay to live free of gaps and duplicates. Waiting costs no task and no timer per subscriber: a single ticker
/// wakes every waiter periodically so each can send its heartbeat.
///
/// Maintenance comes through here too, whichever process did it (`EventLog.catchUp`): a raised pruning horizon
/// goes to the observer set with `onHorizon`, and deleted streams are announced so their subscriptions end.
public final class CommitHub: Sendable {
    /// Why a wait ended.
    public enum Wake: Sendable, Equatable {
        /// The head moved past the waiter's position.
        case commit
        /// A periodic tick: time to check deadlines and heartbeats.
        case tick
        /// The hub is closed (shutdown) or the waiting task was cancelled: stop.
        case closed
    }

    private struct Waiter {
        var position: Int64
        var continuation: CheckedContinuation<Wake, Never>
        var subscriber: Int?
    }

    private struct State {
        var head: Int64
        var closed = false
        var nextToken = 0
        var waiters: [Int: Waiter] = [:]
        /// Tokens whose task was cancelled before they registered.
        var cancelled: Set<Int> = []
        /// Streams deleted while this process runs, in order.
        var deletions: [String] = []
        /// The log's maintenance record as this process last applied it.
        var maintenance: MaintenanceMark
        var nextSubscriber = 0
        /// Subscribers whose client went away; their waits end with `.closed`.
        var closedSubscribers: Set<Int> = []
        /// The token a subscriber is waiting under, if it is waiting.
        var waitingSubscribers: [Int: Int] = [:]
    }

    private let state: Mutex<State>

    /// Held in a class for the reason `EventLog` keeps its commit observer in one.
    private final class HorizonObserver: Sendable {
        let handler: @Sendable (_ prunedThrough: Int64) -> Void
        init(_ handler: @escaping @Sendable (_ prunedThrough: Int64) -> Void) { self.handler = handler }
    }
    private let horizonObserver = Mutex<HorizonObserver?>(nil)

    /// What the hub tells `onChange`'s observer, after the waiters it concerns were woken.
    public enum Change: Sendable, Equatable {
        /// The head moved to this id.
        case head(Int64)
        /// A periodic tick, or deletions were announced.
        case tick
        /// The hub was closed: every wait, now and later, ends.
        case closed
    }

    /// Held in a class for the reason `EventLog` keeps its commit observer in one.
    private final class ChangeObserver: Sendable {
        let handler: @Sendable (Change) -> Void
        init(_ handler: @escaping @Sendable (Change) -> Void) { self.handler = handler }
    }
    private let changeObserver = Mutex<ChangeObserver?>(nil)

    /// - Parameter maintenance: the log's maintenance record when it was opened: deletions up to it are not news.
    public init(head: Int64, maintenance: MaintenanceMark = MaintenanceMark()) {
        self.state = Mutex(State(head: head, maintenance: maintenance))
    }

    /// The id of the last event this process knows to be committed.
    public var head: Int64 { state.withLock { $0.head } }

    /// Records a new head and wakes the waiters it concerns. Heads only move forward.
    public func publish(head: Int64) {
        let (moved, woken): (Bool, [Waiter]) = state.withLock { state in
            guard head > state.head else { return (false, []) }
            state.head = head
            var woken: [Waiter] = []
            for (token, waiter) in state.waiters where waiter.position < head {
                woken.append(waiter)
                state.waiters[token] = nil
                if let subscriber = waiter.subscriber { state.waitingSubscribers[subscriber] = nil }
            }
            return (true, woken)
        }
        for waiter in woken { waiter.continuation.resume(returning: .commit) }
        if moved { changeObserver.withLock { $0 }?.handler(.head(head)) }
    }

    /// Wakes every waiter with `.tick`.
    public func tick() {
        let woken = state.withLock { state in
            defer {
                state.waiters.removeAll(keepingCapacity: true)
                state.waitingSubscribers.removeAll(keepingCapacity: true)
            }
            return Array(state.waiters.values)
        }
        for waiter in woken { waiter.continuation.resume(returning: .tick) }
        changeObserver.withLock { $0 }?.handler(.tick)
    }

    /// Sets the function told every change waiters hear of: a new head (told after the head is recorded, so
    /// whoever reads `head` afterwards sees it), a tick, closing. The server's live subscribers, which wait
    /// without a continuation here, follow the log through it.
    public func onChange(_ handler: @escaping @Sendable (Change) -> Void) {
        changeObserver.withLock { $0 = ChangeObserver(handler) }
    }

    /// True once `close` was called.
    public var isClosed: Bool { state.withLock { $0.closed } }

    /// Sets the function told the new pruning horizon (the highest id removed from any stream) whenever maintenance
    /// by any process raised it, before deletions are announced: the server drops its window of recent events
    /// through it, so the window never hands out what the log no longer holds.
    public func onHorizon(_ handler: @escaping @Sendable (_ prunedThrough: Int64) -> Void) {
        horizonObserver.withLock { $0 = HorizonObserver(handler) }
    }

    /// The log's maintenance record as last applied.
    public var maintenance: MaintenanceMark { state.withLock { $0.maintenance } }

    /// Applies a newer reading of the log's maintenance record: reports a raised horizon to the observer, then
    /// records the streams deleted since the last reading and wakes every waiter, so subscriptions covering them
    /// end. Deletions are told apart by their `seq`, so a deletion read twice (by the poll and by the process that
    /// deleted) is announced once, and readings may arrive in any order.
    public func apply(_ mark: MaintenanceMark, deletions: [StreamDeletion]) {
        let (horizon, announced): (Int64?, Bool) = state.withLock { state in
            let known = state.maintenance
            let fresh = deletions.filter { $0.seq > known.deletions }.sorted { $0.seq < $1.seq }
            state.deletions += fresh.map(\.stream)
            state.maintenance = MaintenanceMark(
                generation: max(known.generation, mark.generation),
                prunedThrough: max(known.prunedThrough, mark.prunedThrough),
                deletions: max(known.deletions, fresh.last?.seq ?? 0)
            )
            return (mark.prunedThrough > known.prunedThrough ? mark.prunedThrough : nil, !fresh.isEmpty)
        }
        if let horizon { horizonObserver.withLock { $0 }?.handler(horizon) }
        if announced { tick() }
    }

    /// How many deletions were announced; a subscription remembers it to spot new ones.
    public var deletionCount: Int { state.withLock { $0.deletions.count } }

    /// The streams deleted after the first `count` announcements.
    public func deletions(after count: Int) -> [String] {
        state.withLock { Array($0.deletions.dropFirst(count)) }
    }

    /// Ends every wait, now and later, with `.closed`.
    public func close() {
        let woken = state.withLock { state in
            state.closed = true
            defer {
                state.waiters.removeAll()
                state.waitingSubscribers.removeAll()
            }
            return Array(state.waiters.values)
        }
        for waiter in woken { waiter.continuation.resume(returning: .closed) }
        changeObserver.withLock { $0 }?.handler(.closed)
    }

    /// A new subscriber identity, so `closeSubscriber` can end that subscriber's waits (its client went away)
    /// without a task of its own watching the connection.
    public func makeSubscriber() -> Int {
        state.withLock { state in
            state.nextSubscriber += 1
            return state.nextSubscriber
        }
    }

    /// Ends the subscriber's current and later waits with `.closed`.
    public func closeSubscriber(_ subscriber: Int) {
        let waiter: Waiter? = state.withLock { state in
            state.closedSubscribers.insert(subscriber)
            guard let token = state.waitingSubscribers.removeValue(forKey: subscriber) else { return nil }
            return state.waiters.removeValue(forKey: token)
        }
        waiter?.continuation.resume(returning: .closed)
    }

    /// True once `closeSubscriber` was called for the subscriber (and until it is forgotten).
    public func isClosed(subscriber: Int) -> Bool {
        state.withLock { $0.closedSubscribers.contains(subscriber) }
    }

    /// Drops what the hub kept about a subscriber that has finished.
    public func forgetSubscriber(_ subscriber: Int) {
        state.withLock { state in
            state.closedSubscribers.remove(subscriber)
            state.waitingSubscribers[subscriber] = nil
        }
    }

    /// Suspends until the head is past `position`, the next tick, closing (of the hub or of `subscriber`), or
    /// cancellation of the calling task.
    public func wait(after position: Int64, subscriber: Int? = nil) async -> Wake {
        let token = state.withLock { state in
            state.nextToken += 1
            return state.nextToken
        }
        defer { _ = state.withLock { $0.cancelled.remove(token) } }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Wake, Never>) in
                let immediate: Wake? = state.withLock { state in
                    if state.cancelled.remove(token) != nil || state.closed { return .closed }
                    if let subscriber, state.closedSubscribers.contains(subscriber) { return .closed }
                    if state.head > position { return .commit }
                    state.waiters[token] = Waiter(position: position, continuation: continuation, subscriber: subscriber)
                    if let subscriber { state.waitingSubscribers[subscriber] = token }
                    return nil
                }
                if let immediate { continuation.resume(returning: immediate) }
            }
        } onCancel: {
            let waiter = state.withLock { state in
                if let waiter = state.waiters.removeValue(forKey: token) {
                    if let subscriber = waiter.subscriber { state.waitingSubscribers[subscriber] = nil }
                    return Optional(waiter)
                }
                state.cancelled.insert(token)
                return nil
            }
            waiter?.continuation.resume(returning: .closed)
        }
    }
}

/// Where the log's maintenance record stood (table `maintenance`, kept by triggers on `streams` in the transaction
/// of every prune and deletion, by whatever process did it).
public struct MaintenanceMark: Sendable, Equatable {
    /// Bumped by every change of a stream's horizon or tombstone.
    public var generation: Int64
    /// The highest id removed from any stream.
    public var prunedThrough: Int64
    /// The `seq` of the last stream deletion.
    public var deletions: Int64

    public init(generation: Int64 = 0, prunedThrough: Int64 = 0, deletions: Int64 = 0) {
        self.generation = generation
        self.prunedThrough = prunedThrough
        self.deletions = deletions
    }
}

/// A stream's deletion, numbered in the order deletions were committed.
public struct StreamDeletion: Sendable, Equatable {
    public var seq: Int64
    public var stream: String

    public init(seq: Int64, stream: String) {
        self.seq = seq
        self.stream = stream
    }
}
