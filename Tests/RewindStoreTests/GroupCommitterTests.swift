import RewindStore
import Synchronization
import Testing

/// The group commit both stores append through, on its own: requests are plain numbers, and each commit waits until
/// the test releases it, so every moment between two commits can be looked at.
@Suite("Group committer")
struct GroupCommitterTests {
    @Test("requests queued behind a commit are committed together in the next one, each answered its own result")
    func batchesWaitingRequests() async throws {
        let writer = Writer()
        try await writer.holdCommit(of: 1, queueing: [2, 3, 4])
        writer.held.release()
        try await writer.held.startedCount(2)
        #expect(writer.held.batches == [[1], [2, 3, 4]])
        #expect(try await writer.answer(1).get() == 10)
        writer.held.release()
        for n in [2, 3, 4] { #expect(try await writer.answer(n).get() == n * 10) }
        try await eventually("the writer is idle") { !writer.committer.isCommitting }
    }

    @Test("the lead passes to the first queued request before the batch is answered; with none left the writer goes idle")
    func handsOverTheLead() async throws {
        let writer = Writer()
        try await writer.holdCommit(of: 1, queueing: [2])
        writer.held.release()
        try await writer.held.startedCount(2)
        #expect(try await writer.answer(1).get() == 10)
        writer.submit(3)
        try await eventually("3 queued behind the commit of 2") { writer.committer.waitingCount == 1 }
        #expect(writer.held.batches == [[1], [2]], "3 waits: it does not start a commit of its own")
        writer.held.release()
        try await writer.held.startedCount(3)
        writer.held.release()
        #expect(try await writer.answer(2).get() == 20)
        #expect(try await writer.answer(3).get() == 30)
        try await eventually("the writer is idle") { !writer.committer.isCommitting }
        writer.submit(4)
        try await writer.held.startedCount(4)
        writer.held.release()
        #expect(try await writer.answer(4).get() == 40)
        #expect(writer.held.batches == [[1], [2], [3], [4]])
    }

    @Test("a failed commit fails every request of its batch; a request's own failure fails it alone; the next batch commits")
    func failedBatch() async throws {
        let writer = Writer()
        try await writer.holdCommit(of: 1, queueing: [2, 3])
        writer.held.fail(Broken(batch: 0))
        await #expect(throws: Broken(batch: 0)) { try await writer.answer(1).get() }
        try await writer.held.startedCount(2)
        writer.held.fail(Broken(batch: 1))
        for n in [2, 3] { await #expect(throws: Broken(batch: 1)) { try await writer.answer(n).get() } }
        try await writer.holdCommit(of: -5, queueing: [6])
        writer.held.release()
        await #expect(throws: Refused(request: -5)) { try await writer.answer(-5).get() }
        try await writer.held.startedCount(4)
        writer.held.release()
        #expect(try await writer.answer(6).get() == 60)
    }

    @Test("an announced commit passes the lead on before its announcement; announcements run in commit order, each before its batch is answered")
    func announcesInCommitOrder() async throws {
        let writer = Writer(announcing: true)
        try await writer.holdCommit(of: 1, queueing: [2])
        writer.held.release()
        try await writer.announced.startedCount(1)
        try await writer.held.startedCount(2)
        #expect(writer.answerNow(1) == nil, "1 is answered only once its commit is announced")
        writer.held.release()
        try await eventually("the commit of 2 returned") { writer.held.finished == 2 }
        #expect(writer.announced.batches == [[1]], "2's announcement waits for 1's")
        #expect(writer.answerNow(2) == nil)
        writer.announced.release()
        #expect(try await writer.answer(1).get() == 10)
        try await writer.announced.startedCount(2)
        #expect(writer.answerNow(2) == nil)
        writer.announced.release()
        #expect(try await writer.answer(2).get() == 20)
        #expect(writer.announced.batches == [[1], [2]])
        try await eventually("the writer is idle") { !writer.committer.isCommitting }
    }

    @Test("a commit that hands off early lets the next one run beside it; answers wait for their own commit, announcements keep commit order")
    func pipelinedCommits() async throws {
        let writer = Writer(pipelined: true)
        writer.submit(1)
        try await writer.held.startedCount(1)
        writer.submit(2)
        try await writer.held.startedCount(2)
        #expect(writer.held.batches == [[1], [2]], "2 led a commit of its own while 1's was held")
        #expect(writer.committer.isCommitting)
        writer.held.release(commit: 1)
        try await eventually("the commit of 2 returned") { writer.held.finished == 1 }
        #expect(writer.announced.batches.isEmpty, "2's announcement waits for 1's commit and announcement")
        #expect(writer.answerNow(2) == nil)
        writer.held.release(commit: 0)
        try await writer.announced.startedCount(1)
        #expect(writer.announced.batches == [[1]])
        #expect(writer.answerNow(1) == nil, "1 is answered only once its commit is announced")
        writer.announced.release()
        #expect(try await writer.answer(1).get() == 10)
        try await writer.announced.startedCount(2)
        writer.announced.release()
        #expect(try await writer.answer(2).get() == 20)
        #expect(writer.announced.batches == [[1], [2]])
        try await eventually("the writer is idle") { !writer.committer.isCommitting }
    }

    @Test("failWaiting answers every request waiting behind the commit in flight at once; that commit still completes")
    func failsWaitingRequests() async throws {
        let writer = Writer()
        try await writer.holdCommit(of: 1, queueing: [2, 3])
        #expect(writer.committer.failWaiting(Broken(batch: -1)) == 2)
        for n in [2, 3] {
            await #expect(throws: Broken(batch: -1), "answered while the commit of 1 is still held") { try await writer.answer(n).get() }
        }
        #expect(writer.committer.waitingCount == 0)
        writer.held.release()
        #expect(try await writer.answer(1).get() == 10)
        try await eventually("the writer is idle") { !writer.committer.isCommitting }
        #expect(writer.held.batches == [[1]])
    }

    @Test("failing the waiting ones spares the request told to lead next, and the leader that found the writer idle")
    func failWaitingSparesLeaders() {
        var state = GroupCommitState<String>()
        guard case .lead = state.arrive("a", refusal: { nil }) else { Issue.record("a finds the writer idle and leads"); return }
        #expect(state.failWaiting().isEmpty, "a was told to lead and has not taken the queue yet")
        #expect(state.takeBatch().map(\.waiter) == ["a"])
        for name in ["b", "c"] {
            guard case .wait = state.arrive(name, refusal: { nil }) else { Issue.record("\(name) waits behind a's commit"); return }
        }
        #expect(state.handOver()?.waiter == "b")
        #expect(state.failWaiting().map(\.waiter) == ["c"], "b was resumed to lead: answering it again would crash")
        #expect(state.queue.map(\.waiter) == ["b"])
        #expect(state.takeBatch().map(\.waiter) == ["b"])
        #expect(state.handOver() == nil)
        #expect(!state.committing)
        #expect(state.failWaiting().isEmpty, "nothing waits when no commit is in flight")
    }

    @Test("a refusal answers at once only requests that would wait behind a commit in flight")
    func refusesWhileBusy() async throws {
        let writer = Writer(refusal: Broken(batch: -2))
        try await writer.holdCommit(of: 1, queueing: [])
        writer.submit(2)
        await #expect(throws: Broken(batch: -2)) { try await writer.answer(2).get() }
        #expect(writer.committer.waitingCount == 0)
        writer.held.release()
        #expect(try await writer.answer(1).get() == 10)
    }

    @Test("once closed, new requests are answered closed; those queued before are still committed")
    func closed() async throws {
        let writer = Writer()
        try await writer.holdCommit(of: 1, queueing: [2])
        writer.committer.close()
        #expect(writer.committer.isClosed)
        writer.submit(3)
        do {
            _ = try await writer.answer(3).get()
            Issue.record("a request after close is answered closed")
        } catch StoreError.closed {}
        writer.held.release()
        try await writer.held.startedCount(2)
        writer.held.release()
        #expect(try await writer.answer(1).get() == 10)
        #expect(try await writer.answer(2).get() == 20)
        #expect(writer.held.batches == [[1], [2]])
    }

    @Test("the leader's caller going away does not stop its commit")
    func cancelledLeader() async throws {
        let writer = Writer()
        let leader = try await writer.holdCommit(of: 1, queueing: [2])
        leader.cancel()
        writer.held.release()
        #expect(try await writer.answer(1).get() == 10, "the commit did not see the cancellation")
        try await writer.held.startedCount(2)
        writer.held.release()
        #expect(try await writer.answer(2).get() == 20)
    }
}

/// A committer over numbers, whose commits are held until released, and the answers its callers got.
private final class Writer: Sendable {
    let committer: GroupCommitter<Int, Int>
    let held = HeldCommits()
    /// With `announcing`, each commit's announcement, held until released like a commit.
    let announced = HeldCommits()
    private let announcing: Bool
    /// With `pipelined`, each commit hands the lead off as it starts, before it is held.
    private let pipelined: Bool
    private let answers = Mutex<[Int: Result<Int, any Error>]>([:])

    init(refusal: (any Error)? = nil, announcing: Bool = false, pipelined: Bool = false) {
        committer = GroupCommitter { refusal }
        self.announcing = announcing
        self.pipelined = pipelined
    }

    /// Submits `n` from a task of its own; its answer is kept for `answer(_:)`.
    @discardableResult
    func submit(_ n: Int) -> Task<Void, Never> {
        Task { [self] in
            let result: Result<Int, any Error>
            do {
                if pipelined {
                    result = .success(
                        try await committer.submit(n) { [held, announced] requests, handOff in
                            handOff()
                            return (try await held.commit(requests), { _ = try? await announced.commit(requests) })
                        }
                    )
                } else if announcing {
                    result = .success(
                        try await committer.submit(n) { [held, announced] requests in
                            (try await held.commit(requests), { _ = try? await announced.commit(requests) })
                        }
                    )
                } else {
                    result = .success(try await committer.submit(n) { [held] in try await held.commit($0) })
                }
            } catch { result = .failure(error) }
            answers.withLock { $0[n] = result }
        }
    }

    /// Submits `first` and waits until its commit started (and is held), then submits `others` one by one, each
    /// queued before the next, so they queue in that order. Returns the task of `first`.
    @discardableResult
    func holdCommit(of first: Int, queueing others: [Int]) async throws -> Task<Void, Never> {
        // Counted before submitting: the commit may start before the next line runs.
        let started = held.batches.count
        let leader = submit(first)
        try await held.startedCount(started + 1)
        for n in others {
            let queued = committer.waitingCount + 1
            submit(n)
            try await eventually("\(n) queued") { committer.waitingCount == queued }
        }
        return leader
    }

    /// The answer to `n`, waited for a few seconds at most.
    func answer(_ n: Int) async throws -> Result<Int, any Error> {
        try await eventually("an answer to \(n)") { answerNow(n) != nil }
        return answerNow(n)!
    }

    /// The answer to `n` if it has one already.
    func answerNow(_ n: Int) -> Result<Int, any Error>? {
        answers.withLock { $0[n] }
    }
}

/// A commit function that records each batch and waits until the test releases or fails it. It answers n with
/// n × 10, and a negative n with its own failure. It fails when its task is cancelled.
private final class HeldCommits: Sendable {
    private struct State {
        var batches: [[Int]] = []
        /// By commit, in the order they started.
        var outcomes: [Int: Result<Void, any Error>] = [:]
        var finished = 0

        mutating func settleOldest(_ outcome: Result<Void, any Error>) {
            var index = 0
            while outcomes[index] != nil { index += 1 }
            outcomes[index] = outcome
        }
    }
    private let state = Mutex(State())

    var batches: [[Int]] { state.withLock { $0.batches } }
    /// Commits that were released and returned.
    var finished: Int { state.withLock { $0.finished } }

    func commit(_ requests: [Int]) async throws -> [Result<Int, any Error>] {
        let index = state.withLock { state in
            state.batches.append(requests)
            return state.batches.count - 1
        }
        while true {
            let outcome = state.withLock { $0.outcomes[index] }
            if let outcome {
                try outcome.get()
                break
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        try Task.checkCancellation()
        state.withLock { $0.finished += 1 }
        return requests.map { $0 < 0 ? .failure(Refused(request: $0)) : .success($0 * 10) }
    }

    /// Lets the oldest commit not yet released complete.
    func release() { state.withLock { $0.settleOldest(.success(())) } }

    /// Lets the commit that started `index`-th (from 0) complete, whether or not earlier ones did.
    func release(commit index: Int) { state.withLock { $0.outcomes[index] = .success(()) } }

    /// Makes the oldest commit not yet released throw `error`.
    func fail(_ error: any Error) { state.withLock { $0.settleOldest(.failure(error)) } }

    /// Waits until `count` commits have started.
    func startedCount(_ count: Int) async throws {
        try await eventually("\(count) commits started") { batches.count >= count }
    }
}

private struct Broken: Error, Equatable {
    let batch: Int
}

private struct Refused: Error, Equatable {
    let request: Int
}

private struct TimedOut: Error {}

/// Waits (5 s at most) until `condition` holds; records an issue and throws when it does not.
private func eventually(_ what: String, _ condition: () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(5)
    while !condition() {
        guard ContinuousClock.now < deadline else {
            Issue.record("timed out waiting for \(what)")
            throw TimedOut()
        }
        try await Task.sleep(for: .milliseconds(1))
    }
}
