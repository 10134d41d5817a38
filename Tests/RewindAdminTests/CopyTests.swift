import Foundation
import RewindAdmin
import RewindCore
import RewindStore
import RewindTestSupport
import Synchronization
import Testing

@Suite("Export, import, backup")
struct CopyTests {
    func exported(_ path: String) async throws -> String {
        var text = ""
        try await LogReader(path: path).export { text += $0 }
        return text
    }

    func importing(_ text: String, into path: String) async throws -> Importer {
        let log = try openLog(path)
        defer { log.close() }
        var importer = try await Importer(log: log, location: path)
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            try await importer.add(line: line)
        }
        try await importer.finish()
        return importer
    }

    func exported(_ log: TestLog) async throws -> String {
        var text = ""
        try await log.read { try await $0.export { text += $0 } }
        return text
    }

    func importing(_ text: String, into log: TestLog) async throws -> Importer {
        try await log.write { store in
            var importer = try await Importer(log: store, location: log.location.description)
            for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
                try await importer.add(line: line)
            }
            try await importer.finish()
            return importer
        }
    }

    /// The same round trip on each backend: a log with checkpoints, a tombstone, JSON and an idempotency key,
    /// exported and imported into a fresh log of the same backend, reads back the same and exports the same lines.
    @Test(arguments: Backend.all) func exportThenImportOnEveryBackend(backend: Backend) async throws {
        try await withTestLog(backend) { source in
            try await source.write { log in
                try await writeExportable(log, keep: 4, deleted: "c new", json: [NewEvent(data: #"{"k":[1,2.50]}"#, isJSON: true)])
            }
            let text = try await exported(source)
            #expect(text.contains(#""checkpoint":"#))
            #expect(text.contains(#"{"stream_state":"c","deleted_at":"#))
            let head = try await source.read { try await $0.stats().head }
            #expect(text.hasSuffix("{\"head\":\(head)}\n"))
            try await withTestLog(backend) { copy in
                let importer = try await importing(text, into: copy)
                #expect(importer.events == 9)
                let report = try await copy.read { try await $0.verify() }
                #expect(report.passed, "\(String(describing: report.failure))")
                #expect(report.tip == (try await source.read { try await $0.verify() }.tip))
                #expect(try await copy.read { try await $0.events(EventQuery()) } == (try await source.read { try await $0.events(EventQuery()) }))
                #expect(
                    try await copy.read { try await $0.streams(includeDeleted: true) }
                        == (try await source.read { try await $0.streams(includeDeleted: true) })
                )
                #expect(try await exported(copy) == text, "exporting the copy gives the same lines")
                // The copy takes new events after the old head, chained on.
                #expect(try await copy.write { try await append($0, "a", ["after import"]) }.firstID == head + 1)
                #expect(try await copy.read { try await $0.verify() }.passed)
                // Only into an empty log.
                await #expect(throws: AdminError.self) { _ = try await importing(text, into: copy) }
            }
        }
    }

    @Test func exportThenImportKeepsIdsHashesAndQueries() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        let log = try await writtenLog(path)
        _ = try await log.prune(RetentionPolicy(defaults: .init(maxEvents: 4)))
        _ = try await append(log, "c", ["c new"])
        #expect(try await log.deleteStream("c"))
        _ = try await append(log, "a", [#"{"json": "no", "but": "text"}"#])
        _ = try await log.append(
            AppendRequest(
                stream: try StreamName(validating: "j"),
                events: [NewEvent(data: #"{"k":[1,2.50]}"#, isJSON: true)],
                idempotencyKey: "key-1"
            )
        )
        log.close()
        let text = try await exported(path)
        #expect(text.contains(#""checkpoint":"#))
        #expect(text.contains(#"{"stream_state":"c","deleted_at":"#))
        #expect(text.hasSuffix("{\"head\":\(try LogReader(path: path).stats().head)}\n"))
        let copy = directory.path("copy.sqlite")
        let importer = try await importing(text, into: copy)
        #expect(importer.events == 10)
        let report = try await LogReader(path: copy).verify()
        #expect(report.passed, "\(String(describing: report.failure))")
        #expect(report.tip == (try await LogReader(path: path).verify().tip))
        #expect(try LogReader(path: copy).events(EventQuery()) == (try LogReader(path: path).events(EventQuery())))
        #expect(try LogReader(path: copy).streams(includeDeleted: true) == (try LogReader(path: path).streams(includeDeleted: true)))
        #expect(try await exported(copy) == text, "exporting the copy gives the same lines")
        // The copy takes new events after the old head, chained on.
        let reopened = try openLog(copy)
        #expect(try await append(reopened, "a", ["after import"]).firstID == (try LogReader(path: path).stats().head) + 1)
        reopened.close()
        #expect(try await LogReader(path: copy).verify().passed)
        // Only into an empty log.
        await #expect(throws: AdminError.self) { _ = try await importing(text, into: copy) }
    }

    @Test func importRefusesAChangedExportNamingTheLine() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        try await writtenLog(path).close()
        let text = try await exported(path)
        var lines = text.split(separator: "\n").map(String.init)
        lines[6] = lines[6].replacingOccurrences(of: #""data":"b"#, with: #""data":"B"#)
        let error = await #expect(throws: AdminError.self) {
            _ = try await importing(lines.joined(separator: "\n"), into: directory.path("bad.sqlite"))
        }
        #expect(error?.description.hasPrefix("line 7: event 7 (stream b) does not match its hash") == true, "\(String(describing: error))")
        var dropped = text.split(separator: "\n").map(String.init)
        dropped.remove(at: 3)
        await #expect(throws: AdminError.self) { _ = try await importing(dropped.joined(separator: "\n"), into: directory.path("bad2.sqlite")) }
    }

    @Test func aBackupTakenWhileWritersRunHoldsEverythingAcknowledgedBeforeIt() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        let log = try openLog(path)
        let shared = WriterProgress()
        // Eight publishers append as fast as the writer commits, for at most 20 s or 200 000 events each.
        let writers = (0..<8).map { publisher in
            Task {
                var count = 0
                let deadline = ContinuousClock.now + .seconds(20)
                while !shared.stop.load(ordering: .relaxed), count < 200_000, ContinuousClock.now < deadline {
                    let result = try await append(log, "p\(publisher)", (0..<10).map { "p\(publisher)-\(count + $0)" })
                    count += 10
                    shared.acknowledged.withLock { $0 = max($0, result.lastID) }
                }
                return count
            }
        }
        /// Waits (at most 20 s) until the publishers have had `count` events acknowledged.
        func awaitAcknowledged(_ count: Int64) async throws -> Int64 {
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline {
                let acknowledged = shared.acknowledged.withLock { $0 }
                if acknowledged >= count { return acknowledged }
                try await Task.sleep(for: .milliseconds(10))
            }
            return shared.acknowledged.withLock { $0 }
        }
        let before = try await awaitAcknowledged(5_000)
        #expect(before >= 5_000)
        let backup = directory.path("backup.sqlite")
        try LogReader(path: path).backup(to: backup)
        let after = shared.acknowledged.withLock { $0 }
        #expect(try await awaitAcknowledged(after + 2_000) >= after + 2_000, "publishers keep going after the backup")
        shared.stop.store(true, ordering: .relaxed)
        var total = 0
        for writer in writers { total += try await writer.value }
        log.close()
        let copy = try LogReader(path: backup)
        let report = try await copy.verify()
        #expect(report.passed, "\(String(describing: report.failure))")
        let ids = try copy.events(EventQuery()).map(\.event.id)
        #expect(ids.count >= Int(before))
        #expect(ids.prefix(Int(before)) == ArraySlice(1...before), "every event acknowledged before the backup began")
        #expect(ids == Array(1...Int64(ids.count)), "a consistent prefix of the log, no partial commit")
        #expect(Int64(total) > before)
        // The backup is a working log.
        let reopened = try openLog(backup)
        #expect(try await append(reopened, "after", ["x"]).firstID == Int64(ids.count) + 1)
        reopened.close()
    }
}

/// What the publishers of the backup test share: the highest id acknowledged, and when to stop.
final class WriterProgress: Sendable {
    let acknowledged = Mutex<Int64>(0)
    let stop = Atomic<Bool>(false)
}
