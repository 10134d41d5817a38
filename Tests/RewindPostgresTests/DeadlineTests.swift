import Foundation
import RewindStore
import Synchronization
import Testing

@testable import RewindPostgres

/// `withDeadline` answers in time, and what its body returns too late is not dropped: a connection opened after
/// the caller gave up (a timeout, or a log shut down while its listener connects) must still be closed.
@Suite("Deadlines")
struct DeadlineTests {
    @Test func aValueInTimeIsReturned() async throws {
        let value = try await withDeadline(.seconds(5), "a quick step") { 7 }
        #expect(value == 7)
    }

    @Test func aValueReturnedTooLateGoesToDiscard() async throws {
        let discarded = Mutex<[Int]>([])
        let started = ContinuousClock.now
        await #expect(throws: StoreError.self) {
            try await withDeadline(.milliseconds(50), "a slow step", discard: { late in discarded.withLock { $0.append(late) } }) {
                // Cancelled when the deadline passes, as a connect is; it still returns what it made.
                try? await Task.sleep(for: .milliseconds(500))
                return 7
            }
        }
        #expect(ContinuousClock.now - started < .milliseconds(450), "answered at the deadline, not when the body ended")
        try await waitUntil("the late value to be discarded", within: .seconds(5)) { discarded.withLock { $0 } == [7] }
    }

    @Test func aValueReturnedAfterCancellationGoesToDiscard() async throws {
        let discarded = Mutex<[Int]>([])
        let call = Task {
            try await withDeadline(.seconds(30), "a step", discard: { late in discarded.withLock { $0.append(late) } }) {
                try? await Task.sleep(for: .milliseconds(300))
                return 8
            }
        }
        try await Task.sleep(for: .milliseconds(50))
        call.cancel()
        await #expect(throws: CancellationError.self) { try await call.value }
        try await waitUntil("the late value to be discarded", within: .seconds(5)) { discarded.withLock { $0 } == [8] }
    }
}
