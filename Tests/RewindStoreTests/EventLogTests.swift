import Foundation
import GRDB
import Logging
import RewindCore
import RewindStore
import RewindTestSupport
import Testing

/// The log's behaviour through `EventStore`, the same on both backends: every test runs on SQLite, and on PostgreSQL
/// when `REWIND_TEST_POSTGRES_URL` names a test cluster.
@Suite("Event log store")
struct EventLogTests {
    /// SQLite's own: GRDB's migration table and the WAL journal (PostgreSQL's twin runs concurrent opens).
    @Test func migrationsAreAppliedOnceAndRecorded() async throws {
        try await TemporaryStore.with(.sqlite) { temporary in
            _ = try await temporary.open()
            _ = try await temporary.open()
            let queue = try DatabaseQueue(path: temporary.location)
            let applied = try await queue.read { db in try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations ORDER BY identifier") }
            #expect(applied == ["0001_event_log", "0002_tombstones_and_retention", "0003_audit_chain", "0004_maintenance_record"])
            let mode = try await queue.read { db in try String.fetchOne(db, sql: "PRAGMA journal_mode") }
            #expect(mode == "wal")
        }
    }

    @Test(arguments: Backend.all) func aDatabaseFromANewerBuildIsRefused(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            _ = try await temporary.open()
            switch backend {
            case .sqlite: try await temporary.execute("INSERT INTO grdb_migrations (identifier) VALUES ('9999_future')")
            case .postgres: try await temporary.execute("INSERT INTO rewind_migrations (name) VALUES ('9999_future')")
            }
            await #expect {
                _ = try await temporary.open()
            } throws: { error in
                guard case .schemaTooNew = error as? StoreError else { return false }
                return "\(error)".contains("newer rewind")
            }
        }
    }

    @Test(arguments: Backend.all) func eventsSurviveReopening(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let first = try await temporary.open()
            let result = try await first.append(try request("s", ["a", "b"]))
            #expect(result.ids == 1...2)
            let reopened = try await temporary.open()
            #expect(try await reopened.head() == 2)
            #expect(reopened.commits.head == 2)
            let page = try await reopened.read(ReadQuery(after: 0, filter: EventFilter(stream: try StreamName(validating: "s")), limit: 10))
            #expect(page.events.map(\.data) == ["a", "b"])
            #expect(page.events.allSatisfy { $0.time == result.time })
        }
    }

    @Test(arguments: Backend.all) func idsAreNeverReusedAfterDeletingTheNewest(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let log = try await temporary.open()
            _ = try await log.append(try request("s", ["a", "b", "c"]))
            try await temporary.execute("DELETE FROM events WHERE id >= 2")
            let next = try await log.append(try request("s", ["d"]))
            #expect(next.firstID == 4)
            #expect(try await log.head() == 4)
        }
    }

    @Test(arguments: Backend.all) func concurrentAppendsShareCommitsAndGetConsecutiveIds(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let log = try await temporary.open()
            let observed = Shared<[(previous: Int64, ids: [Int64])]>([])
            log.onCommit { previous, events in observed.withLock { $0.append((previous, events.map(\.id))) } }
            let results = try await withThrowingTaskGroup(of: AppendResult.self) { group in
                for task in 0..<200 {
                    group.addTask { try await log.append(try request("s\(task % 7)", (0...(task % 4)).map { "\(task)-\($0)" })) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let ids = results.flatMap { Array($0.ids) }
            #expect(ids.sorted() == Array(1...Int64(ids.count)))
            for result in results { #expect(result.lastID - result.firstID + 1 == Int64(result.ids.count)) }
            // Group commit: requests that arrived together shared transactions, each with one commit time.
            let times = Set(results.map(\.time))
            #expect(times.count < results.count, "\(times.count) commits for \(results.count) requests")
            if backend == .postgres {
                // A PostgreSQL commit (a round trip and a WAL flush) lasts long enough for most requests to queue.
                #expect(times.count < results.count / 2, "\(times.count) commits for \(results.count) requests")
            }
            // The commit observer hears each commit once, in id order, before the hub's head moves past it.
            let commits = observed.withLock { $0 }
            #expect(commits.count == times.count)
            var head: Int64 = 0
            for commit in commits {
                #expect(commit.previous == head)
                #expect(commit.ids == Array((head + 1)...(head + Int64(commit.ids.count))))
                head += Int64(commit.ids.count)
            }
            #expect(log.commits.head == Int64(ids.count))
            let streams = try await log.streams()
            #expect(streams.map(\.count).reduce(0, +) == Int64(ids.count))
            for stream in streams {
                let page = try await log.read(
                    ReadQuery(after: 0, filter: EventFilter(stream: try StreamName(validating: stream.name)), limit: 10_000)
                )
                #expect(Int64(page.events.count) == stream.count)
                #expect(page.events.first?.id == stream.firstID && page.events.last?.id == stream.lastID)
                #expect(Int64(page.events.map(\.data.utf8.count).reduce(0, +)) == stream.bytes)
            }
        }
    }

    /// A publisher that goes away does not stop the commit holding its events, whether it leads that commit or
    /// waits for it, and whether the commit is small (SQLite writes it on the caller's thread) or large (on GRDB's
    /// writer queue): the others of its batch wait for that commit's outcome.
    @Test(arguments: Backend.all) func appendsOfCancelledCallersStillCommit(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let log = try await temporary.open()
            let tasks = try (0..<40).map { index in
                let datas = (0..<(index % 10 == 0 ? 200 : 1)).map { "\(index)-\($0)" }
                let request = try request("s\(index % 3)", datas)
                let task = Task { try await log.append(request) }
                task.cancel()
                return task
            }
            var ids: [Int64] = []
            for task in tasks { ids += Array(try await task.value.ids) }
            #expect(ids.sorted() == Array(1...Int64(4 * 200 + 36)))
            let page = try await log.read(ReadQuery(after: 0, filter: .everything, limit: 10_000))
            #expect(page.events.map(\.id) == Array(1...Int64(4 * 200 + 36)))
        }
    }

    /// Another process holding SQLite's write lock makes a commit wait for it (up to the busy timeout), not fail:
    /// the attempt on the caller's thread, which must not wait, gives way to the writer queue, which does.
    @Test func aCommitWaitsForAnotherProcessHoldingTheWriteLock() async throws {
        try await TemporaryStore.with(.sqlite) { temporary in
            let log = try await temporary.open()
            _ = try await log.append(try request("s", ["before"]))
            let other = try DatabaseQueue(path: temporary.location)
            let (locked, released) = (Shared(false), Shared(false))
            // Another connection (as another process would) takes the write lock and keeps it for 300 ms.
            let holder = Thread {
                try? other.writeWithoutTransaction { db in
                    try db.execute(sql: "BEGIN IMMEDIATE")
                    locked.withLock { $0 = true }
                    Thread.sleep(forTimeInterval: 0.3)
                    released.withLock { $0 = true }
                    try db.execute(sql: "COMMIT")
                }
            }
            holder.start()
            while !locked.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
            let append = Task { try await log.append(try request("s", ["while locked"])) }
            let result = try await append.value
            #expect(released.withLock { $0 }, "the append waited for the lock")
            #expect(result.firstID == 2)
            let page = try await log.read(ReadQuery(after: 0, filter: .everything, limit: 10))
            #expect(page.events.map(\.data) == ["before", "while locked"])
        }
    }

    @Test(arguments: Backend.all) func idempotencyKeyIsPerStreamAndExpires(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let log = try await temporary.open(idempotencyWindow: .seconds(3))
            let first = try await log.append(try request("s", ["a"], key: "k"))
            let again = try await log.append(try request("s", ["other"], key: "k"))
            #expect(again.replayed && again.ids == first.ids && again.time == first.time)
            let otherStream = try await log.append(try request("t", ["a"], key: "k"))
            #expect(!otherStream.replayed)
            try await Task.sleep(for: .milliseconds(3200))
            let afterWindow = try await log.append(try request("s", ["a"], key: "k"))
            #expect(!afterWindow.replayed && afterWindow.firstID == otherStream.lastID + 1)
            // Expiry forgets the key of "t", older than the window; "s"'s was renewed by the append after it.
            #expect(try await log.expireIdempotencyKeys() == 1)
            #expect(try await log.expireIdempotencyKeys() == 0)
        }
    }

    /// Concurrent duplicates append once, also when they reach two logs (two processes) on one store.
    @Test(arguments: Backend.all) func concurrentDuplicateKeysAppendOnce(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let log = try await temporary.open()
            let other = try await temporary.open()
            let results = try await withThrowingTaskGroup(of: AppendResult.self) { group in
                for index in 0..<50 {
                    let target = index.isMultiple(of: 2) ? log : other
                    group.addTask { try await target.append(try request("s", ["x", "y"], key: "same")) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { !$0.replayed }.count == 1)
            #expect(Set(results.map(\.ids)).count == 1)
            #expect(Set(results.map(\.time)).count == 1, "a replay answers with the first append's time")
            #expect(try await log.head() == 2)
            // The same key on another stream is another key.
            #expect(!(try await other.append(try request("t", ["z"], key: "same"))).replayed)
        }
    }

    @Test(arguments: Backend.all) func pagesReportHowFarTheyScanned(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let log = try await temporary.open()
            _ = try await log.append(try request("a", ["1", "2"]))
            _ = try await log.append(try request("b", ["3"]))
            _ = try await log.append(try request("a", ["4"]))
            _ = try await log.append(try request("b", ["5", "6"]))
            // A full page stops at its last event.
            let full = try await log.read(ReadQuery(after: 0, filter: EventFilter(stream: try StreamName(validating: "a")), limit: 2))
            #expect(full.events.map(\.id) == [1, 2] && full.scannedThrough == 2)
            // A short page has seen the whole log: the position moves past events of other streams.
            let short = try await log.read(ReadQuery(after: 2, filter: EventFilter(stream: try StreamName(validating: "a")), limit: 10))
            #expect(short.events.map(\.id) == [4] && short.scannedThrough == 6 && short.head == 6)
            let none = try await log.read(ReadQuery(after: 4, filter: EventFilter(stream: try StreamName(validating: "a")), limit: 10))
            #expect(none.events.isEmpty && none.scannedThrough == 6)
            let bounded = try await log.read(ReadQuery(after: 0, filter: .everything, limit: 10, through: 3))
            #expect(bounded.events.map(\.id) == [1, 2, 3] && bounded.scannedThrough == 3)
            // A cursor beyond the head never moves backwards.
            let beyond = try await log.read(ReadQuery(after: 100, filter: .everything, limit: 10))
            #expect(beyond.events.isEmpty && beyond.scannedThrough == 100)
        }
    }

    @Test(arguments: Backend.all) func sinceFindsTheFirstEventAtOrAfterATimeDespiteHoles(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let log = try await temporary.open()
            var times: [Timestamp] = []
            for round in 0..<40 {
                let result = try await log.append(try request("s", (0...(round % 3)).map { "\(round)-\($0)" }))
                times.append(result.time)
                if round % 7 == 0 { try await Task.sleep(for: .milliseconds(2)) }
            }
            // Punch holes in the id sequence.
            try await temporary.execute("DELETE FROM events WHERE id % 5 = 0 OR id BETWEEN 20 AND 30")
            let all = try await log.read(ReadQuery(after: 0, filter: .everything, limit: 10_000)).events
            var probes = times
            probes += [Timestamp(microseconds: 0), Timestamp(microseconds: times.last!.microseconds + 1)]
            probes += times.map { Timestamp(microseconds: $0.microseconds + 1) }
            let head = try await log.head()
            for probe in probes {
                let expected = (all.first { $0.time >= probe }?.id).map { $0 - 1 } ?? head
                #expect(try await log.cursor(since: probe) == expected, "since \(probe)")
            }
            #expect(try await log.cursor(since: Timestamp(microseconds: 0)) == 0)
        }
    }

    @Test(arguments: Backend.all) func waitersWakeOnCommitTickAndClose(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let log = try await temporary.open()
            let hub = log.commits
            async let woken = hub.wait(after: 0)
            try await Task.sleep(for: .milliseconds(50))
            _ = try await log.append(try request("s", ["a"]))
            #expect(await woken == .commit)
            #expect(await hub.wait(after: 0) == .commit, "a head already past the position wakes at once")
            async let ticked = hub.wait(after: 1)
            try await Task.sleep(for: .milliseconds(50))
            hub.tick()
            #expect(await ticked == .tick)
            let cancelled = Task { await hub.wait(after: 1) }
            cancelled.cancel()
            #expect(await cancelled.value == .closed)
            // A subscriber whose client went away: its wait ends, now and later; others keep waiting.
            let subscriber = hub.makeSubscriber()
            async let dropped = hub.wait(after: 1, subscriber: subscriber)
            try await Task.sleep(for: .milliseconds(50))
            hub.closeSubscriber(subscriber)
            #expect(await dropped == .closed)
            #expect(await hub.wait(after: 1, subscriber: subscriber) == .closed)
            hub.forgetSubscriber(subscriber)
            async let closed = hub.wait(after: 1)
            try await Task.sleep(for: .milliseconds(50))
            hub.close()
            #expect(await closed == .closed)
            #expect(await hub.wait(after: 1) == .closed)
        }
    }

    @Test(arguments: Backend.all) func pruningKeepsTheNewestAndRecordsTheHorizon(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let log = try await temporary.open()
            _ = try await log.append(try request("hot", (1...10).map { "h\($0)" }))
            _ = try await log.append(try request("audit", (1...5).map { "a\($0)" }))
            _ = try await log.append(try request("hot", ["h11"]))
            let policy = RetentionPolicy(
                defaults: .init(maxEvents: 4),
                rules: [(pattern: try EventFilter(patterns: ["audit*"]), limits: .init())]
            )
            let report = try await log.prune(policy, chunk: 3)
            #expect(report.events == 7)
            #expect(report.streams == ["hot": 7])
            let hotQuery = ReadQuery(after: 0, filter: EventFilter(stream: try StreamName(validating: "hot")), limit: 100)
            let hot = try await log.read(hotQuery)
            #expect(hot.events.map(\.data) == ["h8", "h9", "h10", "h11"])
            #expect(try await horizon(log, hotQuery) == 7)
            let auditQuery = ReadQuery(after: 0, filter: EventFilter(stream: try StreamName(validating: "audit")), limit: 100)
            let audit = try await log.read(auditQuery)
            let auditHorizon = try await horizon(log, auditQuery)
            #expect(audit.events.count == 5 && auditHorizon == 0, "a rule without limits keeps everything")
            guard case .live(let info) = try await log.status(ofStream: "hot") else { Issue.record("hot is live"); return }
            #expect(info.count == 4 && info.firstID == 8 && info.lastID == 16 && info.bytes == 2 + 2 + 3 + 3)
            #expect(try await log.prune(policy).events == 0, "pruning again removes nothing")
            // By age: everything committed before the horizon goes.
            let byAge = try await log.prune(
                RetentionPolicy(defaults: .init(maxAge: .seconds(60))),
                now: Timestamp(microseconds: Timestamp.now().microseconds + 3_600_000_000),
                chunk: 10_000
            )
            #expect(byAge.events == 9)
            #expect(try await log.streams().map(\.count) == [0, 0])
            #expect(try await log.append(try request("hot", ["again"])).firstID == 17)
            guard case .live(let again) = try await log.status(ofStream: "hot") else { Issue.record("hot is live"); return }
            #expect(again.count == 1 && again.firstID == 17)
        }
    }

    @Test(arguments: Backend.all) func deletedStreamsKeepTheirNameAndRefuseEvents(backend: Backend) async throws {
        try await TemporaryStore.with(backend) { temporary in
            let log = try await temporary.open()
            _ = try await log.append(try request("gone", ["a", "b"], key: "k"))
            _ = try await log.append(try request("stays", ["c"]))
            #expect(try await log.deleteStream("gone"))
            #expect(try await log.deleteStream("gone") == false)
            #expect(try await log.deleteStream("never") == false)
            guard case .deleted = try await log.status(ofStream: "gone") else { Issue.record("gone is deleted"); return }
            #expect(try await log.status(ofStream: "never") == .unknown)
            await #expect(throws: StoreError.self) { try await log.append(try request("gone", ["x"])) }
            let page = try await log.read(ReadQuery(after: 0, filter: .everything, limit: 10))
            #expect(page.events.map(\.data) == ["c"])
            #expect(try await horizon(log, ReadQuery(after: 0, filter: EventFilter(stream: try StreamName(validating: "gone")), limit: 10)) == 2)
            #expect(try await log.streams().map(\.name) == ["stays"])
            // Other requests committed in the same group as a refused one are not affected.
            let refusedRequest = try request("gone", ["y"])
            let acceptedRequest = try request("stays", ["d"], key: "d")
            @Sendable func outcome(_ request: AppendRequest) async -> Result<AppendResult, any Error> {
                do { return .success(try await log.append(request)) } catch { return .failure(error) }
            }
            async let refused = outcome(refusedRequest)
            async let accepted = log.append(acceptedRequest)
            let (refusal, acceptance) = try await (refused, accepted)
            #expect(throws: StoreError.self) { try refusal.get() }
            #expect(acceptance.firstID == 4 && !acceptance.replayed)
            #expect(try await log.event(id: 4)?.data == "d")
            let gone = try await log.scan(
                ReadQuery(after: 0, filter: EventFilter(stream: try StreamName(validating: "gone")), limit: 10),
                into: 0
            ) { count, _ in count += 1 }
            #expect(gone.output == 0 && gone.page.head == 4)
            // Many at once, so that groups mix refused and keyed requests: each keyed one appends, once.
            let mixed = try await withThrowingTaskGroup(of: AppendResult?.self) { group in
                for index in 0..<40 {
                    if index.isMultiple(of: 2) {
                        group.addTask { try? await log.append(try request("gone", ["refused \(index)"])) }
                    } else {
                        group.addTask { try await log.append(try request("stays", ["kept \(index)"], key: "key \(index)")) }
                    }
                }
                return try await group.reduce(into: [AppendResult?]()) { $0.append($1) }
            }
            let kept = mixed.compactMap { $0 }
            #expect(kept.count == 20 && kept.allSatisfy { !$0.replayed })
            #expect(Set(kept.map(\.firstID)).count == 20)
            let stays = try await log.read(ReadQuery(after: 4, filter: EventFilter(stream: try StreamName(validating: "stays")), limit: 100))
            #expect(Set(stays.events.map(\.data)) == Set((0..<40).filter { !$0.isMultiple(of: 2) }.map { "kept \($0)" }))
            // Removing the newest events keeps the next id.
            #expect(try await log.deleteStream("stays"))
            #expect(try await log.append(try request("new", ["n1"])).firstID == 25)
            #expect(try await log.head() == 25)
        }
    }
}
