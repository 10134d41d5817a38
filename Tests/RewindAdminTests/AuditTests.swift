import Foundation
import GRDB
import RewindAdmin
import RewindCore
import RewindStore
import RewindTestSupport
import Testing

func append(_ log: any EventStore, _ stream: String, _ datas: [String], type: String = "message") async throws -> AppendResult {
    try await log.append(
        AppendRequest(
            stream: try StreamName(validating: stream),
            events: datas.map { NewEvent(type: try! EventType(validating: type), data: $0) }
        )
    )
}

/// 34 events through the real writer, interleaved over three streams.
func writeRounds(_ log: any EventStore) async throws {
    for round in 0..<10 {
        _ = try await append(log, "a", ["a\(round)"])
        _ = try await append(log, "b", ["b\(round)", "b\(round)'"])
        if round % 3 == 0 { _ = try await append(log, "c", ["c\(round)"]) }
    }
}

/// A log file written through the real writer: 34 events interleaved over three streams.
func writtenLog(_ path: String) async throws -> EventLog {
    let log = try openLog(path)
    try await writeRounds(log)
    return log
}

/// Every checkpoint is followed by an event (or is the newest entry): chunked pruning and neighbouring removals
/// leave no redundant ones behind.
func expectOneCheckpointPerRun(_ path: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let (events, checkpoints) = try await DatabaseQueue(path: path).read { db in
        (
            try Int64.fetchAll(db, sql: "SELECT id FROM events ORDER BY id"),
            try Int64.fetchAll(db, sql: "SELECT id FROM chain_checkpoints ORDER BY id")
        )
    }
    let kinds = (events.map { ($0, "event") } + checkpoints.map { ($0, "checkpoint") }).sorted { $0.0 < $1.0 }
    for (index, entry) in kinds.enumerated() where entry.1 == "checkpoint" && index + 1 < kinds.count {
        #expect(
            kinds[index + 1].1 == "event",
            "checkpoint \(entry.0) is followed by checkpoint \(kinds[index + 1].0)",
            sourceLocation: sourceLocation
        )
    }
    #expect(!checkpoints.isEmpty, sourceLocation: sourceLocation)
}

@Suite("Audit chain: verify, tampering, pruning, deletion, backfill")
struct AuditTests {
    @Test(arguments: Backend.all) func theWriterChainsEveryEventAndAnUntouchedLogVerifies(backend: Backend) async throws {
        try await withTestLog(backend) { log in
            try await log.write { try await writeRounds($0) }
            let report = try await log.read { try await $0.verify() }
            #expect(report.passed)
            #expect(report.failure == nil)
            #expect(report.integrity == (backend == .sqlite ? ["ok"] : nil))
            #expect(report.verified == 34)
            // The stored hash of each event is the documented function of its predecessor's and its own fields.
            let events = try await log.read { try await $0.events(EventQuery()) }
            var previous = ChainHash.genesis
            for stored in events {
                let event = stored.event
                previous = ChainHash.hash(previous: previous, event: event)
                #expect(stored.hash == previous)
            }
            #expect(report.tip == previous)
            let result = try rewind(["verify", "--db", log.db])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stdout.hasPrefix("ok: 34 events, 0 checkpoints, chain tip \(ChainHash.hex(previous))"), "\(result.stdout)")
            if backend == .postgres {
                #expect(result.stdout.contains("PostgreSQL: the chain is the check"), "\(result.stdout)")
            }
        }
    }

    /// The documented encoding, computed independently (Python's hashlib over the bytes docs/audit.md lists), so an
    /// auditor's own implementation agrees with the writer's.
    @Test func theHashIsTheDocumentedEncoding() {
        let one = ChainHash.hash(previous: ChainHash.genesis, id: 1, stream: "ab", type: "c", time: 5, data: "d")
        #expect(ChainHash.hex(one) == "5a34bb166a8fdf52f3682df6ccdd9e90577f258dd80ca231de6c9717b923576d")
        let two = ChainHash.hash(
            previous: one,
            id: 2,
            stream: "orders.eu",
            type: "order.created",
            time: 1_795_000_000_123_456,
            data: "{\"n\":1}\nline ✓"
        )
        #expect(ChainHash.hex(two) == "aac184bb93b895a84c0f3888b20f562522113131a9ab153d49efcdb7398e3d3e")
    }

    @Test func theHashEncodingCannotBeForgedByMovingAFieldBoundary() {
        let one = ChainHash.hash(previous: ChainHash.genesis, id: 1, stream: "ab", type: "c", time: 5, data: "d")
        let two = ChainHash.hash(previous: ChainHash.genesis, id: 1, stream: "a", type: "bc", time: 5, data: "d")
        #expect(one != two)
        #expect(ChainHash.hex(one).count == 64)
        #expect(ChainHash.bytes(hex: ChainHash.hex(one)) == one)
    }

    /// What someone changing rows behind Rewind's back does, in each database's SQL (the same where they agree).
    static let tampering: [(what: String, sqlite: String, postgres: String, id: Int64, problem: String)] = [
        (
            "one byte of data", "UPDATE events SET data = 'c' || substr(data, 2) WHERE id = 17",
            "UPDATE events SET data = convert_to('c', 'UTF8') || substring(data from 2) WHERE id = 17", 17, "differ from what was hashed"
        ),
        ("a deleted row", "DELETE FROM events WHERE id = 12", "DELETE FROM events WHERE id = 12", 13, "event 12 before it is gone"),
        (
            "two rows reordered",
            "UPDATE events SET id = -20 WHERE id = 20; UPDATE events SET id = 20 WHERE id = 21; UPDATE events SET id = 21 WHERE id = -20",
            "UPDATE events SET id = -20 WHERE id = 20; UPDATE events SET id = 20 WHERE id = 21; UPDATE events SET id = 21 WHERE id = -20",
            20, "differ"
        ),
        (
            "a changed time", "UPDATE events SET time = time - 1000000 WHERE id = 9", "UPDATE events SET time = time - 1000000 WHERE id = 9", 9,
            "earlier than the event before it"
        ),
        ("the newest row deleted", "DELETE FROM events WHERE id = 34", "DELETE FROM events WHERE id = 34", 34, "gone from the end of the log"),
        ("a stream renamed", "UPDATE events SET stream = 'x' WHERE id = 3", "UPDATE events SET stream = 'x' WHERE id = 3", 3, "differ"),
        (
            "a replaced hash", "UPDATE events SET hash = zeroblob(32) WHERE id = 5",
            "UPDATE events SET hash = decode(repeat('00', 32), 'hex') WHERE id = 5",
            5, "stored hash 0000"
        ),
    ]

    @Test(arguments: Backend.all, 0..<tampering.count)
    func tamperingIsFoundAndNamed(backend: Backend, index: Int) async throws {
        let (what, sqliteSQL, postgresSQL, id, problem) = Self.tampering[index]
        try await withTestLog(backend) { log in
            try await log.write { try await writeRounds($0) }
            #expect(try await log.read { try await $0.verify() }.passed)
            try log.tamper(backend == .sqlite ? sqliteSQL : postgresSQL)
            let report = try await log.read { try await $0.verify() }
            let failure = try #require(report.failure, "\(what) must break the chain")
            #expect(failure.id == id, "\(what): \(failure)")
            #expect(failure.description.contains(problem), "\(what): \(failure)")
            // The command says so on one line and exits 1.
            let result = try rewind(["verify", "--db", log.db])
            #expect(result.status == 1, "\(what): \(result.stdout) \(result.stderr)")
            #expect(result.stderr.contains("event \(id)"), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
        }
    }

    /// Pruning and deletion through the PostgreSQL log leave checkpoints the chain walk passes through, and a
    /// row deleted by hand next to them still shows.
    @Test(arguments: Backend.all) func pruningAndDeletionVerifyOnEveryBackend(backend: Backend) async throws {
        try await withTestLog(backend) { log in
            try await log.write { store in
                try await writeRounds(store)
                let report = try await store.prune(RetentionPolicy(defaults: .init(maxEvents: 3)), now: .now(), chunk: 4)
                #expect(report.events == 34 - 9)
                _ = try await append(store, "c", ["c last"])
                #expect(try await store.deleteStream("c"))
                _ = try await append(store, "b", ["after deletion"])
            }
            let report = try await log.read { try await $0.verify() }
            #expect(report.passed, "\(String(describing: report.failure))")
            #expect(report.verified == 7)
            #expect(report.checkpoints > 0)
            // A row deleted by hand between two neighbours (no checkpoint between them) is named by the next one.
            let remaining = try await log.read { try await $0.events(EventQuery()) }.map(\.event.id)
            let index = try #require(
                remaining.indices.dropLast(2).first { remaining[$0 + 1] == remaining[$0] + 1 && remaining[$0 + 2] == remaining[$0] + 2 }
            )
            try log.tamper("DELETE FROM events WHERE id = \(remaining[index + 1])")
            let failure = try #require(try await log.read { try await $0.verify() }.failure)
            #expect(
                failure.id == remaining[index + 2] && failure.description.contains("event \(remaining[index + 1]) before it is gone"),
                "\(failure)"
            )
            #expect(try rewind(["verify", "--db", log.db]).status == 1)
        }
    }

    @Test func pruningAndDeletionLeaveAChainThatVerifiesAndKeepsGrowing() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        let log = try await writtenLog(path)
        // Per-stream pruning removes runs from the middle of the global chain.
        let report = try await log.prune(RetentionPolicy(defaults: .init(maxEvents: 3)), chunk: 4)
        #expect(report.events == 34 - 9)
        #expect(try await LogReader(path: path).verify().passed)
        try await expectOneCheckpointPerRun(path)
        _ = try await append(log, "a", ["after pruning"])
        #expect(try await LogReader(path: path).verify().passed)
        // Deleting the stream holding the newest events: the next event chains from a checkpoint.
        _ = try await append(log, "c", ["c last"])
        #expect(try await log.deleteStream("c"))
        let afterDeletion = try await LogReader(path: path).verify()
        #expect(afterDeletion.passed, "\(String(describing: afterDeletion.failure))")
        _ = try await append(log, "b", ["after deletion"])
        #expect(try await log.deleteStream("a"))
        let final = try await LogReader(path: path).verify()
        #expect(final.passed, "\(String(describing: final.failure))")
        #expect(final.verified == 4)
        #expect(final.checkpoints > 0)
        try await expectOneCheckpointPerRun(path)
        // Deleting a row by hand still shows, also next to checkpoints.
        let remaining = try LogReader(path: path).events(EventQuery()).map(\.event.id)
        try sqlite3(path, "DELETE FROM events WHERE id = \(remaining[1])")
        #expect(try await LogReader(path: path).verify().failure?.id == remaining[2])
        log.close()
        let result = try rewind(["verify", "--db", path])
        #expect(result.status == 1)
    }

    @Test func eventsFromBeforeTheChainAreHashedWhenAWriterOpens() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        try await writtenLog(path).close()
        let before = try LogReader(path: path).events(EventQuery()).map(\.hash)
        // As a log migrated from 0002 looks: rows without hashes.
        try sqlite3(path, "UPDATE events SET hash = NULL WHERE id > 5")
        #expect(try await LogReader(path: path).verify().failure?.description.contains("no hash") == true)
        try openLog(path).close()
        #expect(try LogReader(path: path).events(EventQuery()).map(\.hash) == before)
        #expect(try await LogReader(path: path).verify().passed)
    }

    @Test func pruningReclaimsSpaceAndRecordsTheRetention() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        let log = try openLog(path)
        let big = String(repeating: "x", count: 4000)
        for _ in 0..<50 { _ = try await append(log, "big", Array(repeating: big, count: 20)) }
        let vacuum = try await DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") }
        #expect(vacuum == 2, "new logs use incremental vacuum")
        let policy = RetentionPolicy(defaults: .init(maxEvents: 10))
        let dry = try await log.pruneCandidates(policy)
        #expect(dry.events == 990 && dry.counts == ["big": 990] && dry.streams == ["big": 990])
        #expect(try LogReader(path: path).stats().events == 1000, "a dry run removes nothing")
        func pages() async throws -> Int {
            try await DatabaseQueue(path: path).read { db in try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0 }
        }
        let before = try await pages()
        let report = try await log.prune(policy)
        #expect(report.events == 990)
        let after = try await pages()
        #expect(after < before / 4, "pages given back: \(before) -> \(after)")
        #expect(try LogReader(path: path).stats().retention == "max-events=10")
        #expect(try await LogReader(path: path).verify().passed)
        log.close()
    }
}
