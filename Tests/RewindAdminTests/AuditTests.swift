import Foundation
import GRDB
import RewindAdmin
import RewindCore
import RewindStore
import Testing

func append(_ log: EventLog, _ stream: String, _ datas: [String], type: String = "message") async throws -> AppendResult {
    try await log.append(
        AppendRequest(
            stream: try StreamName(validating: stream),
            events: datas.map { NewEvent(type: try! EventType(validating: type), data: $0) }
        )
    )
}

/// A log written through the real writer: 30 events interleaved over three streams.
func writtenLog(_ path: String) async throws -> EventLog {
    let log = try openLog(path)
    for round in 0..<10 {
        _ = try await append(log, "a", ["a\(round)"])
        _ = try await append(log, "b", ["b\(round)", "b\(round)'"])
        if round % 3 == 0 { _ = try await append(log, "c", ["c\(round)"]) }
    }
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
    @Test func theWriterChainsEveryEventAndAnUntouchedLogVerifies() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        let log = try await writtenLog(path)
        let report = try LogReader(path: path).verify()
        #expect(report.passed)
        #expect(report.failure == nil && report.integrity == ["ok"])
        #expect(report.verified == 34)
        // The stored hash of each event is the documented function of its predecessor's and its own fields.
        let events = try LogReader(path: path).events(EventQuery())
        var previous = ChainHash.genesis
        for stored in events {
            let event = stored.event
            previous = ChainHash.hash(previous: previous, event: event)
            #expect(stored.hash == previous)
        }
        #expect(report.tip == previous)
        log.close()
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

    @Test(arguments: [
        ("one byte of data", "UPDATE events SET data = 'c' || substr(data, 2) WHERE id = 17", Int64(17), "differ from what was hashed"),
        ("a deleted row", "DELETE FROM events WHERE id = 12", Int64(13), "event 12 before it is gone"),
        (
            "two rows reordered",
            "UPDATE events SET id = -20 WHERE id = 20; UPDATE events SET id = 20 WHERE id = 21; UPDATE events SET id = 21 WHERE id = -20",
            Int64(20), "differ"
        ),
        ("a changed time", "UPDATE events SET time = time - 1000000 WHERE id = 9", Int64(9), "earlier than the event before it"),
        ("the newest row deleted", "DELETE FROM events WHERE id = 34", Int64(34), "gone from the end of the log"),
        ("a stream renamed", "UPDATE events SET stream = 'x' WHERE id = 3", Int64(3), "differ"),
    ])
    func tamperingIsFoundAndNamed(what: String, sql: String, id: Int64, problem: String) async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        try await writtenLog(path).close()
        #expect(try LogReader(path: path).verify().passed)
        try sqlite3(path, sql)
        let report = try LogReader(path: path).verify()
        let failure = try #require(report.failure, "\(what) must break the chain")
        #expect(failure.id == id, "\(what): \(failure)")
        #expect(failure.description.contains(problem), "\(what): \(failure)")
        // The command says so on one line and exits 1.
        let result = try rewind(["verify", "--db", path])
        #expect(result.status == 1, "\(what): \(result.stdout) \(result.stderr)")
        #expect(result.stderr.contains("event \(id)"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1)
    }

    @Test func pruningAndDeletionLeaveAChainThatVerifiesAndKeepsGrowing() async throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("log.sqlite")
        let log = try await writtenLog(path)
        // Per-stream pruning removes runs from the middle of the global chain.
        let report = try await log.prune(RetentionPolicy(defaults: .init(maxEvents: 3)), chunk: 4)
        #expect(report.events == 34 - 9)
        #expect(try LogReader(path: path).verify().passed)
        try await expectOneCheckpointPerRun(path)
        _ = try await append(log, "a", ["after pruning"])
        #expect(try LogReader(path: path).verify().passed)
        // Deleting the stream holding the newest events: the next event chains from a checkpoint.
        _ = try await append(log, "c", ["c last"])
        #expect(try await log.deleteStream("c"))
        let afterDeletion = try LogReader(path: path).verify()
        #expect(afterDeletion.passed, "\(String(describing: afterDeletion.failure))")
        _ = try await append(log, "b", ["after deletion"])
        #expect(try await log.deleteStream("a"))
        let final = try LogReader(path: path).verify()
        #expect(final.passed, "\(String(describing: final.failure))")
        #expect(final.verified == 4)
        #expect(final.checkpoints > 0)
        try await expectOneCheckpointPerRun(path)
        // Deleting a row by hand still shows, also next to checkpoints.
        let remaining = try LogReader(path: path).events(EventQuery()).map(\.event.id)
        try sqlite3(path, "DELETE FROM events WHERE id = \(remaining[1])")
        #expect(try LogReader(path: path).verify().failure?.id == remaining[2])
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
        #expect(try LogReader(path: path).verify().failure?.description.contains("no hash") == true)
        try openLog(path).close()
        #expect(try LogReader(path: path).events(EventQuery()).map(\.hash) == before)
        #expect(try LogReader(path: path).verify().passed)
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
        #expect(try LogReader(path: path).verify().passed)
        log.close()
    }
}
