import Foundation
import NIOCore
import PostgresNIO
import RewindCore
import RewindPostgres
import RewindStore
import Synchronization
import Testing

/// The one-call group commit (`rewind_commit`, migration 0003) and the packed replay page: the audit chain comes
/// out the same whichever side hashes it, ids and results are what the five-statement commit gave, and a scanned
/// page holds what a read holds.
@Suite(
    "PostgreSQL commit function",
    .enabled(if: TestCluster.available, "REWIND_TEST_POSTGRES_URL is not set"),
    .serialized
)
struct CommitFunctionTests {
    /// Two logs on one database taking turns: each commit finds the head moved by the other node, so the function
    /// chains the hashes itself; a run of commits by one log uses the hashes chained in Swift. Every stored hash is
    /// the chain `rewind verify` recomputes.
    @Test func theChainIsTheSameWhicheverSideHashesIt() async throws {
        try await withDatabase { database in
            let configuration = try database.configuration()
            try await withLog(configuration) { a in
                try await withLog(configuration) { b in
                    var expected: Int64 = 0
                    for round in 0..<6 {
                        let log = round % 2 == 0 ? a : b
                        let result = try await log.append(request("s\(round % 3)", ["r\(round)", "é\u{0}\(round)", ""], type: "t\(round)"))
                        #expect(result.firstID == expected + 1)
                        expected = result.lastID
                    }
                    for round in 0..<5 {
                        expected = try await a.append(request("mine", ["m\(round)"], key: "k\(round)")).lastID
                    }
                    #expect(try await verifyChain(database) == Array(1...expected))
                }
            }
        }
    }

    /// A log written by the five-statement commit this build replaced (hashes chained in Swift, the rows and the
    /// head written by plain SQL) continues with the function's commits, and the whole chain verifies; so does a
    /// log whose head moved behind the back of the process's last commit.
    @Test func theChainContinuesFromEventsTheOldCommitWrote() async throws {
        try await withDatabase { database in
            try await withLog(try database.configuration()) { log in
                _ = try await log.append(request("new", ["before"]))
                try await writeAsTheOldCommitDid(database, stream: "old", datas: ["o1", "o2 \u{0}"])
                // The process's last commit left head 1; the head row now says 3.
                let next = try await log.append(request("new", ["n1", "n2"]))
                #expect(next.ids == 4...5)
                try await writeAsTheOldCommitDid(database, stream: "old", datas: ["o3"])
                #expect(try await log.append(request("new", ["n3"])).firstID == 7)
                #expect(try await log.append(request("new", ["n4"])).firstID == 8)
                #expect(try await verifyChain(database) == Array(1...8))
                let streams = try await log.streams().map(TimelessStream.init)
                #expect(streams.map(\.name) == ["new", "old"])
                #expect(streams.first { $0.name == "old" }?.count == 3)
                #expect(streams.first { $0.name == "new" }?.count == 5)
            }
        }
    }

    /// Requests replayed from their key, repeated within one group commit, or refused for a deleted stream shift the
    /// ids of the requests committed after them in the same batch: the hashes chained in Swift (which assume every
    /// request is written) must give way to the function's from there on. Many concurrent appends land in shared
    /// group commits; every id, replay and refusal is as a one-at-a-time commit would answer, and the chain verifies.
    @Test func replaysAndRefusalsInsideABatchKeepIdsAndChainRight() async throws {
        try await withDatabase { database in
            try await withLog(try database.configuration()) { log in
                _ = try await log.append(request("gone", ["g"]))
                let first = try await log.append(request("keyed", ["k"], key: "early"))
                #expect(try await log.deleteStream("gone"))
                for round in 0..<5 {
                    let outcomes = try await withThrowingTaskGroup(of: (Int, Result<AppendResult, StoreError>).self) { group in
                        for index in 0..<48 {
                            group.addTask {
                                let call: AppendRequest
                                switch index % 4 {
                                case 0: call = try request("keyed", ["again"], key: "early")
                                case 1: call = try request("gone", ["refused"])
                                case 2: call = try request("dup", ["d\(round)", "e\(round)"], key: "round-\(round)")
                                default: call = try request("plain", ["p\(round)-\(index)", "q"])
                                }
                                do { return (index, .success(try await log.append(call))) } catch let error as StoreError {
                                    return (index, .failure(error))
                                }
                            }
                        }
                        var out: [(Int, Result<AppendResult, StoreError>)] = []
                        for try await outcome in group { out.append(outcome) }
                        return out
                    }
                    var duplicates: Set<ClosedRange<Int64>> = []
                    for (index, outcome) in outcomes {
                        switch (index % 4, outcome) {
                        case (0, .success(let result)):
                            #expect(result.replayed && result.ids == first.ids)
                        case (1, .failure(.streamDeleted("gone", _))):
                            break
                        case (2, .success(let result)):
                            duplicates.insert(result.ids)
                        case (3, .success(let result)):
                            #expect(!result.replayed && result.ids.count == 2)
                        default:
                            Issue.record("request \(index) answered \(outcome)")
                        }
                    }
                    #expect(duplicates.count == 1, "one key in one round: one result, \(duplicates)")
                }
                let head = try await log.head()
                let stored = try await database.query("SELECT id FROM events ORDER BY id", as: Int64.self)
                #expect(stored == Array(2...head), "ids without gaps (event 1 was deleted)")
                #expect(try await verifyChain(database) == Array(2...head))
                let keyed = try await database.query("SELECT count(*)::int8 FROM events WHERE stream = 'dup'", as: Int64.self)
                #expect(keyed == [10], "each round's keyed request written once")
            }
        }
    }

    /// A scanned page (one packed row) holds exactly what a read of the same query holds: ids, types and data byte
    /// for byte, across page boundaries, filters and the empty page; and reports the same position.
    @Test func aScannedPageHoldsWhatAReadHolds() async throws {
        try await withDatabase { database in
            try await withLog(try database.configuration()) { log in
                let datas = ["a\u{0}b", "", "😀𝄞", "line\r\nnext", String(repeating: "x", count: 70_000)]
                for round in 0..<4 {
                    _ = try await log.append(request(round % 2 == 0 ? "even" : "odd", datas, type: "type\(round)"))
                }
                let queries = [
                    ReadQuery(after: 0, filter: .everything, limit: 7),
                    ReadQuery(after: 7, filter: .everything, limit: 7),
                    ReadQuery(after: 14, filter: .everything, limit: 100),
                    ReadQuery(after: 20, filter: .everything, limit: 10),
                    ReadQuery(after: 0, filter: .prefix("od"), limit: 100),
                    ReadQuery(after: 0, filter: EventFilter(stream: try StreamName(validating: "odd")), limit: 3),
                    ReadQuery(
                        after: 3,
                        filter: EventFilter(stream: try StreamName(validating: "even"), types: ["type0", "type2"]),
                        limit: 100,
                        through: 12
                    ),
                ]
                for query in queries {
                    let read = try await log.read(query)
                    let scanned = try await log.scan(query, into: [[UInt8]]()) { out, raw in
                        out.append(withUnsafeBytes(of: raw.id.bigEndian) { Array($0) } + Array(raw.type) + [0xFF] + Array(raw.data))
                    }
                    let expected = read.events.map {
                        withUnsafeBytes(of: $0.id.bigEndian) { Array($0) } + Array($0.type.utf8) + [0xFF] + Array($0.data.utf8)
                    }
                    #expect(scanned.output == expected, "\(query)")
                    #expect(scanned.page.count == read.events.count)
                    #expect(scanned.page.firstID == read.events.first?.id)
                    #expect(scanned.page.scannedThrough == read.scannedThrough)
                    #expect(scanned.page.head == read.head)
                }
            }
        }
    }
}

/// Appends one request the way the commit before migration 0003 did: the head row locked, the hashes chained in
/// Swift from its tip, the event rows, the stream's counters and the head written by SQL.
private func writeAsTheOldCommitDid(_ database: TemporaryDatabase, stream: String, datas: [String]) async throws {
    let connection = try await TestCluster.connect(database: database.name)
    defer { Task { try? await connection.close() } }
    try await connection.query("BEGIN", logger: quietLogger)
    var head: Int64 = 0
    var tip: [UInt8] = []
    var last: Int64 = 0
    for try await (h, t, l) in try await connection.query("SELECT head, chain_tip, last_time FROM log_head FOR UPDATE", logger: quietLogger)
        .decode((Int64, ByteBuffer, Int64).self)
    {
        (head, tip, last) = (h, Array(t.readableBytesView), l)
    }
    let time = max(Timestamp.now().microseconds, last)
    for data in datas {
        head += 1
        tip = ChainHash.hash(previous: tip, id: head, stream: stream, type: "message", time: time, data: data)
        try await connection.query(
            """
            INSERT INTO events (id, stream, type, data, json, time, key, hash)
            VALUES (\(head), \(stream), 'message', \(ByteBuffer(string: data)), false, \(time), NULL, \(ByteBuffer(bytes: tip)))
            """,
            logger: quietLogger
        )
        try await connection.query(
            """
            INSERT INTO streams AS s (name, count, first_id, last_id, last_time, bytes) VALUES (\(stream), 1, \(head), \(head), \(time), \(Int64(data.utf8.count)))
            ON CONFLICT (name) DO UPDATE SET count = s.count + 1, last_id = excluded.last_id, last_time = excluded.last_time, bytes = s.bytes + excluded.bytes
            """,
            logger: quietLogger
        )
    }
    try await connection.query("UPDATE log_head SET head = \(head), chain_tip = \(ByteBuffer(bytes: tip)), last_time = \(time)", logger: quietLogger)
    try await connection.query("COMMIT", logger: quietLogger)
}
