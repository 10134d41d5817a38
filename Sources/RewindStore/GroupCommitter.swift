import Synchronization

/// One writer that group-commits: concurrent requests share one commit of the store, and each caller returns only
/// after the commit holding its request did.
///
/// Whichever request finds the writer idle becomes the leader: it takes every request queued meanwhile (its own
/// included) and commits them together with the store's commit function, then hands the lead to the first request
/// that queued during that commit before answering the others of its batch, so the next group commits while
/// these answers go out. Both stores (SQLite's `EventLog`, PostgreSQL's `PostgresEventLog`) append through one.
///
/// The leader's caller going away (its task cancelled) must not fail the other requests of the batch, nor stop a
/// transaction whose outcome they wait for: the commit runs in a task of its own, unless the store says its commit
/// function cannot be interrupted by cancellation (`commitIgnoresCancellation`), and the leader runs it itself.
package final class GroupCommitter<Request: Sendable, Response: Sendable>: Sendable {
    /// Commits a batch in one transaction: one result per request, in the batch's order. A thrown error is every
    /// request's answer.
    package typealias Commit = @Sendable (_ requests: [Request]) async throws -> [Result<Response, any Error>]

    /// A commit as `Commit`, and what is to be done once it is durable but before any of its requests is answered
    /// (telling the commit observer and the subscribers). The leader passes the lead on before running it, so the
    /// next group's commit overlaps it; the announcements of successive commits still run one at a time, in commit
    /// order.
    package typealias AnnouncedCommit =
        @Sendable (_ requests: [Request]) async throws -> (results: [Result<Response, any Error>], announce: @Sendable () async -> Void)

    /// An `AnnouncedCommit` that may let the next group start before it is done: it calls `handOff` once the rest of
    /// its work no longer has to come before the next commit's (PostgreSQL: the call returned, the head row is
    /// locked until `COMMIT`, and the next transaction queues on that lock while this one's `COMMIT` and fsync run).
    /// Calling it is optional, and calling it again does nothing. Announcements still run in commit order, and
    /// each request is still answered only once its own commit is done.
    package typealias PipelinedCommit =
        @Sendable (_ requests: [Request], _ handOff: @escaping @Sendable () -> Void) async throws -> (
            results: [Result<Response, any Error>], announce: @Sendable () async -> Void
        )

    private enum Outcome {
        case done(Response)
        /// The request's caller is to lead the next commit, which includes its own request.
        case lead
    }

    private struct Waiter {
        var request: Request
        var continuation: CheckedContinuation<Outcome, any Error>
    }

    private let state = Mutex(GroupCommitState<Waiter>())
    /// The announcement of the latest commit that has one: the next waits for it.
    private let lastAnnouncement = Mutex<Task<Void, Never>?>(nil)
    private let refusal: @Sendable () -> (any Error)?
    private let commitIgnoresCancellation: Bool

    /// - Parameters:
    ///   - commitIgnoresCancellation: true when the commit function runs to its end whatever its caller's
    ///     cancellation (SQLite's, whose transaction runs without suspending or on GRDB's writer queue). The leader
    ///     then calls it directly instead of in a task of its own, which on a connection's event loop saves two
    ///     thread hops per commit.
    ///   - refusal: asked, while a commit is in flight, whether a new request is to be answered at once with the
    ///     error it returns instead of waiting behind that commit (PostgreSQL known out of reach); nil lets it wait.
    package init(
        commitIgnoresCancellation: Bool = false,
        refusingWhileBusy refusal: @escaping @Sendable () -> (any Error)? = { nil }
    ) {
        self.commitIgnoresCancellation = commitIgnoresCancellation
        self.refusal = refusal
    }

    /// Commits `request` with others queued meanwhile and returns its result once its commit is done. `commit` is
    /// the store's commit function; the leader's is the one that runs.
    package func submit(_ request: Request, commit: @escaping Commit) async throws -> Response {
        try await submit(request, announces: false, committing: { requests, _ in (try await commit(requests), nil) })
    }

    /// Commits `request` as `submit(_:commit:)` does, announcing each commit apart (see `AnnouncedCommit`).
    package func submit(_ request: Request, announcedCommit commit: @escaping AnnouncedCommit) async throws -> Response {
        try await submit(
            request,
            announces: true,
            committing: { requests, _ in
                let (results, announce) = try await commit(requests)
                return (results, announce)
            }
        )
    }

    /// Commits `request` as `submit(_:announcedCommit:)` does, the next group starting when the commit says so
    /// (see `PipelinedCommit`).
    package func submit(_ request: Request, pipelinedCommit commit: @escaping PipelinedCommit) async throws -> Response {
        try await submit(
            request,
            announces: true,
            committing: { requests, handOff in
                let (results, announce) = try await commit(requests, handOff)
                return (results, announce)
            }
        )
    }

    /// Every kind of commit: the hand-off may be ignored, the announcement is optional.
    private typealias Committing =
        @Sendable (_ requests: [Request], _ handOff: @escaping @Sendable () -> Void) async throws -> (
            [Result<Response, any Error>], (@Sendable () async -> Void)?
        )

    private func submit(_ request: Request, announces: Bool, committing commit: @escaping Committing) async throws -> Response {
        var token = 0
        let outcome = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Outcome, any Error>) in
            let arrival = state.withLock { state in
                state.arrive(Waiter(request: request, continuation: continuation), refusal: refusal)
            }
            switch arrival {
            case .closed: continuation.resume(throwing: StoreError.closed)
            case .refused(let error): continuation.resume(throwing: error)
            case .lead(let own):
                token = own
                continuation.resume(returning: .lead)
            case .wait(let own): token = own
            }
        }
        switch outcome {
        case .done(let result): return result
        case .lead: return try await lead(ownToken: token, announces: announces, commit: commit)
        }
    }

    /// Stops taking requests; those already queued are still committed by the current leader.
    package func close() {
        state.withLock { $0.closed = true }
    }

    /// True once `close` was called.
    package var isClosed: Bool { state.withLock { $0.closed } }

    /// True while a commit is in flight or a leader is about to start one (a graceful shutdown waits for this).
    package var isCommitting: Bool { state.withLock { $0.committing || $0.inFlight > 0 } }

    /// How many requests wait for a commit to take them (a leader handed the lead counts until it takes them).
    package var waitingCount: Int { state.withLock { $0.queue.count } }

    /// Answers `error` at once to every request waiting behind the commit in flight, except the one already told
    /// to lead the next commit (it has been resumed once, and leads a commit of what is left). Returns how many
    /// were answered.
    @discardableResult
    package func failWaiting(_ error: any Error) -> Int {
        let failed = state.withLock { $0.failWaiting() }
        for entry in failed { entry.waiter.continuation.resume(throwing: error) }
        return failed.count
    }

    private func lead(
        ownToken: Int,
        announces: Bool,
        commit: @escaping Committing
    ) async throws -> Response {
        let batch = state.withLock { $0.takeBatch() }
        defer { state.withLock { $0.finished() } }
        let requests = batch.map(\.waiter.request)
        // This commit's place among the announcements, taken before the lead can pass on: with a hand-off before
        // the commit is done, the next commit may finish first, and must still announce after this one.
        let turn = announces ? AnnouncementTurn(after: lastAnnouncement) : nil
        let handedOver = Atomic<Bool>(false)
        let handOff: @Sendable () -> Void = { [self] in
            guard !handedOver.exchange(true, ordering: .acquiringAndReleasing) else { return }
            let next = state.withLock { $0.handOver() }
            next?.waiter.continuation.resume(returning: .lead)
        }
        var results: [Result<Response, any Error>]
        var announce: (@Sendable () async -> Void)?
        do {
            if commitIgnoresCancellation {
                (results, announce) = try await commit(requests, handOff)
            } else {
                (results, announce) = try await Task { try await commit(requests, handOff) }.value
            }
            precondition(results.count == batch.count, "a commit answers every request of its batch")
        } catch {
            results = Array(repeating: .failure(error), count: batch.count)
        }
        // Pass the lead on (if the commit did not already) before announcing or answering anyone, so the next group
        // commits meanwhile.
        handOff()
        await turn?.announce(announce)
        var own: Result<Response, any Error>?
        for (entry, result) in zip(batch, results) {
            if entry.token == ownToken {
                own = result
                continue
            }
            switch result {
            case .success(let value): entry.waiter.continuation.resume(returning: .done(value))
            case .failure(let error): entry.waiter.continuation.resume(throwing: error)
            }
        }
        guard let own else { preconditionFailure("a leader's own request is always in the batch it commits") }
        return try own.get()
    }
}

/// One commit's place in the order of announcements: its announcement (if any) runs after every earlier commit's
/// and before every later one's.
private struct AnnouncementTurn: Sendable {
    private let task: Task<Void, Never>
    private let continuation: AsyncStream<(@Sendable () async -> Void)?>.Continuation

    /// Takes the next place after `last`, the latest announcement queued, and becomes the latest.
    init(after last: borrowing Mutex<Task<Void, Never>?>) {
        let (stream, continuation) = AsyncStream.makeStream(of: (@Sendable () async -> Void)?.self)
        self.continuation = continuation
        task = last.withLock { last in
            let previous = last
            let task = Task {
                await previous?.value
                for await announce in stream {
                    await announce?()
                    break
                }
            }
            last = task
            return task
        }
    }

    /// Runs `announce` in this place and returns once it and every earlier announcement ran.
    func announce(_ announce: (@Sendable () async -> Void)?) async {
        continuation.yield(announce)
        continuation.finish()
        await task.value
    }
}

/// The group committer's state and its transitions, apart from any waiting (so they can be checked one by one):
/// the queue of requests waiting for a commit, whether a commit is in flight, and which request was told to lead
/// the next one.
package struct GroupCommitState<Waiter> {
    package struct Entry {
        package var token: Int
        package var waiter: Waiter
    }

    /// What becomes of a request that arrives.
    package enum Arrival {
        /// The writer is closed: answered `StoreError.closed`.
        case closed
        /// Answered at once with this error rather than waiting behind the commit in flight.
        case refused(any Error)
        /// The writer was idle: the request leads a commit now.
        case lead(token: Int)
        /// Queued behind the commit in flight.
        case wait(token: Int)
    }

    package private(set) var queue: [Entry] = []
    /// True while a leader leads: from taking the lead until it hands it over (or the writer goes idle).
    package private(set) var committing = false
    /// Commits taken and not finished: with a hand-off before a commit is done, more than one.
    package private(set) var inFlight = 0
    package var closed = false
    private var nextToken = 0
    /// The request told to lead the next commit that has not taken the queue yet: it stays in the queue, and being
    /// resumed once already, it must not be answered again.
    package private(set) var handedOver: Int?

    package init() {}

    /// Queues a request, or says why it is not queued. A request that would wait behind a commit in flight is
    /// refused when `refusal` gives an error.
    package mutating func arrive(_ waiter: Waiter, refusal: () -> (any Error)?) -> Arrival {
        if closed { return .closed }
        if committing, let error = refusal() { return .refused(error) }
        nextToken += 1
        queue.append(Entry(token: nextToken, waiter: waiter))
        if committing { return .wait(token: nextToken) }
        committing = true
        handedOver = nextToken
        return .lead(token: nextToken)
    }

    /// The leader takes every queued request (its own included) for one commit.
    package mutating func takeBatch() -> [Entry] {
        handedOver = nil
        inFlight += 1
        defer { queue.removeAll(keepingCapacity: true) }
        return queue
    }

    /// After a commit: the first queued request leads the next one, or the writer goes idle (nil).
    package mutating func handOver() -> Entry? {
        guard let first = queue.first else {
            committing = false
            return nil
        }
        handedOver = first.token
        return first
    }

    /// A commit taken by `takeBatch` is done and its requests answered.
    package mutating func finished() {
        inFlight -= 1
    }

    /// Removes and returns every request waiting behind the commit in flight, except the one told to lead next.
    package mutating func failWaiting() -> [Entry] {
        guard committing else { return [] }
        let keep = handedOver
        defer { queue.removeAll { $0.token != keep } }
        return queue.filter { $0.token != keep }
    }
}

extension GroupCommitState: Sendable where Waiter: Sendable {}
extension GroupCommitState.Entry: Sendable where Waiter: Sendable {}
