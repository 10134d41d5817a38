import Foundation
import GRDB
import RewindCore
import RewindStore
import RewindTestSupport
import Synchronization
import Testing

@Suite("Maintenance record: what pruning and deletion did, for every process")
struct MaintenanceRecordTests {
    /// What another process (another log on the same store) appends, deletes and prunes reaches this log when it
    /// looks (`catchUp`, which the server polls), each deletion announced once.
    @Test(arguments: Backend.all) func pruningAndDeletionByAnotherLogReachThisOne(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let log = try await temporary.open()
            defer { log.close() }
            let horizons = Mutex<[Int64]>([])
            log.commits.onHorizon { id in horizons.withLock { $0.append(id) } }
            _ = try await log.append(try request("a", ["a1", "a2"]))
            let before = log.commits.maintenance
            // Appends are no maintenance.
            #expect(try await log.catchUp().maintenance == before)

            let other = try await temporary.open()
            defer { other.close() }
            let b = try await other.append(try request("b", ["b1", "b2", "b3", "b4"]))
            // Another process's commit moves this log's head only once it looks.
            #expect(log.commits.head == 2)
            #expect(try await log.catchUp().head == b.lastID)
            #expect(log.commits.head == b.lastID)
            #expect(try await other.deleteStream("a"))
            let report = try await other.prune(RetentionPolicy(defaults: .init(maxEvents: 1)))
            #expect(report.streams["b"] == b.lastID - 1)
            // Nothing reached this log until it looks at the store.
            #expect(log.commits.deletionCount == 0)
            #expect(horizons.withLock { $0 }.isEmpty)

            let seen = try await log.catchUp()
            #expect(seen.head == b.lastID)
            #expect(seen.maintenance.prunedThrough == b.lastID - 1)
            #expect(seen.maintenance.deletions == before.deletions + 1)
            #expect(seen.maintenance.generation > before.generation)
            #expect(log.commits.deletions(after: 0) == ["a"])
            #expect(horizons.withLock { $0 } == [b.lastID - 1])
            // Looking again announces nothing twice.
            try await log.catchUp()
            #expect(log.commits.deletionCount == 1)
            #expect(horizons.withLock { $0 } == [b.lastID - 1])

            // A log opened after the deletion takes it as history, not as news.
            let late = try await temporary.open()
            defer { late.close() }
            #expect(late.commits.maintenance.deletions == 1)
            try await late.catchUp()
            #expect(late.commits.deletionCount == 0)
        }
    }

    @Test func aDeletionIsAnnouncedOnceWhateverOrderReadingsArriveIn() {
        let hub = CommitHub(head: 10, maintenance: MaintenanceMark(generation: 3, prunedThrough: 4, deletions: 1))
        let horizons = Mutex<[Int64]>([])
        hub.onHorizon { id in horizons.withLock { $0.append(id) } }
        let newer = MaintenanceMark(generation: 6, prunedThrough: 9, deletions: 3)
        let older = MaintenanceMark(generation: 5, prunedThrough: 7, deletions: 2)
        hub.apply(newer, deletions: [StreamDeletion(seq: 2, stream: "x"), StreamDeletion(seq: 3, stream: "y")])
        hub.apply(older, deletions: [StreamDeletion(seq: 2, stream: "x")])
        hub.apply(newer, deletions: [StreamDeletion(seq: 3, stream: "y")])
        // A deletion from before the hub's first reading is not news.
        hub.apply(newer, deletions: [StreamDeletion(seq: 1, stream: "w")])
        #expect(hub.deletions(after: 0) == ["x", "y"])
        #expect(hub.maintenance == newer)
        #expect(horizons.withLock { $0 } == [9])
    }

    @Test(arguments: Backend.all) func anImportedLogKeepsItsDeletionsAsHistory(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let log = try await temporary.open()
            defer { log.close() }
            try await log.importRecords([
                .head(20),
                .streamState(name: "gone", deletedAt: Timestamp(microseconds: 1_000_000), prunedThrough: 12),
                .streamState(name: "trimmed", deletedAt: nil, prunedThrough: 18),
            ])
            let seen = try await log.catchUp().maintenance
            #expect(seen.prunedThrough == 18)
            #expect(seen.deletions == 1)
            #expect(log.commits.deletions(after: 0) == ["gone"])
            // A log opened afterwards takes them as history, not as news.
            let reopened = try await temporary.open()
            defer { reopened.close() }
            #expect(reopened.commits.maintenance == seen)
            try await reopened.catchUp()
            #expect(reopened.commits.deletionCount == 0)
        }
    }
}
