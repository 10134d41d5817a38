public import Synchronization

/// Tells subscribers that the log moved: the writer announces each commit's new head here.
///
/// Subscribers never get events through it, only the news that there is something after their cursor; they then
/// read it themselves. A subscriber thus always works from its own cursor, which is what makes the switch from
/// replay to live free of gaps and duplicates. Waiting costs no task and no timer per subscriber: a single ticker
/// wakes every waiter periodically so each can send its heartbeat.
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
        var nextSubscriber = 0
        /// Subscribers whose client went away; their waits end with `.closed`.
        var closedSubscribers: Set<Int> = []
        /// The token a subscriber is waiting under, if it is waiting.
        var waitingSubscribers: [Int: Int] = [:]
    }

    private let state: Mutex<State>

    public init(head: Int64) {
        self.state = Mutex(State(head: head))
    }

    /// The id of the last event this process knows to be committed.
    public var head: Int64 { state.withLock { $0.head } }

    /// Records a new head and wakes the waiters it concerns. Heads only move forward.
    public func publish(head: Int64) {
        let woken: [Waiter] = state.withLock { state in
            guard head > state.head else { return [] }
            state.head = head
            var woken: [Waiter] = []
            for (token, waiter) in state.waiters where waiter.position < head {
                woken.append(waiter)
                state.waiters[token] = nil
                if let subscriber = waiter.subscriber { state.waitingSubscribers[subscriber] = nil }
            }
            return woken
        }
        for waiter in woken { waiter.continuation.resume(returning: .commit) }
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
    }

    /// Records that a stream was deleted and wakes every waiter, so subscriptions covering it can end.
    public func announceDeletion(of stream: String) {
        state.withLock { $0.deletions.append(stream) }
        tick()
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
