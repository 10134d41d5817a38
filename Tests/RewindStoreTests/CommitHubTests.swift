import RewindStore
import Synchronization
import Testing

/// The hub that tells subscribers about commits and maintenance, on its own: its answers do not depend on whether a
/// waiter registered before or after the event it waits for.
@Suite("Commit hub")
struct CommitHubTests {
    @Test("a wait ends with .commit once the head is past its position, whether it began before or after")
    func waitsEndOnCommit() async {
        let hub = CommitHub(head: 3)
        #expect(await hub.wait(after: 2) == .commit, "the head is already past")
        let waiting = Task { await hub.wait(after: 3) }
        hub.publish(head: 4)
        #expect(await waiting.value == .commit)
    }

    @Test("heads only move forward")
    func headsOnlyMoveForward() {
        let hub = CommitHub(head: 0)
        hub.publish(head: 5)
        hub.publish(head: 3)
        #expect(hub.head == 5)
    }

    @Test("closing ends every wait, now and later; closing one subscriber ends only its waits")
    func closing() async {
        let hub = CommitHub(head: 0)
        let gone = hub.makeSubscriber()
        let staying = hub.makeSubscriber()
        let goneWait = Task { await hub.wait(after: 0, subscriber: gone) }
        hub.closeSubscriber(gone)
        #expect(await goneWait.value == .closed)
        #expect(await hub.wait(after: 0, subscriber: gone) == .closed, "later waits of that subscriber end at once")
        let stayingWait = Task { await hub.wait(after: 0, subscriber: staying) }
        hub.publish(head: 1)
        #expect(await stayingWait.value == .commit)
        hub.close()
        #expect(await hub.wait(after: 1, subscriber: staying) == .closed)
    }

    @Test("a cancelled wait ends with .closed")
    func cancelledWaitsEnd() async {
        let hub = CommitHub(head: 0)
        let waiting = Task { await hub.wait(after: 0) }
        waiting.cancel()
        #expect(await waiting.value == .closed)
    }

    @Test("maintenance: each deletion announced once, in order, and a raised horizon told to the observer")
    func maintenanceIsAnnouncedOnce() {
        let hub = CommitHub(head: 10)
        let horizons = Mutex<[Int64]>([])
        hub.onHorizon { horizon in horizons.withLock { $0.append(horizon) } }
        let first = [StreamDeletion(seq: 1, stream: "a"), StreamDeletion(seq: 2, stream: "b")]
        hub.apply(MaintenanceMark(generation: 1, prunedThrough: 4, deletions: 2), deletions: first)
        hub.apply(MaintenanceMark(generation: 1, prunedThrough: 4, deletions: 2), deletions: first.reversed())
        #expect(hub.deletionCount == 2, "a deletion read twice is announced once")
        hub.apply(MaintenanceMark(generation: 2, prunedThrough: 3, deletions: 3), deletions: [StreamDeletion(seq: 3, stream: "c")])
        #expect(hub.deletions(after: 1) == ["b", "c"])
        #expect(horizons.withLock { $0 } == [4], "an older horizon is not told again")
        #expect(hub.maintenance == MaintenanceMark(generation: 2, prunedThrough: 4, deletions: 3))
    }
}
