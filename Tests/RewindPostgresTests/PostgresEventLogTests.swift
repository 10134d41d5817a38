import Foundation
import PostgresNIO
import RewindCore
import RewindPostgres
import RewindStore
import RewindTestSupport
import Synchronization
import Testing

@Suite(
    "PostgreSQL event log",
    .needsPostgres(),
    .serialized
)
struct PostgresEventLogTests {
    // MARK: - Parity with the SQLite log

    /// The same appends, deletions and prunes on both backends give the same ids, pages, scans, streams,
    /// statuses, cursors and reports (commit times aside, which are each log's own clock).
    @Test func theSameCallsGiveTheSameResultsAsSQLite() async throws {
        try await withDatabase { database in
            let sqlite = try TemporarySQLiteLog()
            try await withLog(try database.configuration()) { postgres in
                let calls: [AppendRequest] = [
                    try request("a", ["a1", "a2"]),
                    try request("b", ["b1"], type: "created", key: "k1"),
                    try request("orders.eu", ["{\"n\":1}"], json: true),
                    try request("orders_x", ["x1"]),
                    try request("a", ["a3"], key: "k2"),
                    try request("b", ["b2", "b3"], type: "updated"),
                    try request("a", ["a3 again"], key: "k2"),
                    try request("ordersXeu", ["not under orders_"]),
                    try request("a", ["a4", "a5", "a6"]),
                ]
                for call in calls {
                    let left = try await sqlite.log.append(call)
                    let right = try await postgres.append(call)
                    #expect(left.ids == right.ids)
                    #expect(left.replayed == right.replayed)
                }
                #expect(try await sqlite.log.deleteStream("b") == postgres.deleteStream("b"))
                #expect(try await sqlite.log.deleteStream("nothing") == postgres.deleteStream("nothing"))
                for log in [AnyLog(sqlite.log), AnyLog(postgres)] {
                    await #expect {
                        _ = try await log.append(try request("b", ["after deletion"]))
                    } throws: { error in
                        guard case .streamDeleted("b", _) = error as? StoreError else { return false }
                        return true
                    }
                }
                let policy = RetentionPolicy(defaults: .init(maxEvents: 2))
                #expect(try await sqlite.log.pruneCandidates(policy) == postgres.pruneCandidates(policy))
                #expect(try await sqlite.log.prune(policy, chunk: 2) == postgres.prune(policy, chunk: 2))
                #expect(try await sqlite.log.recordedRetention() == postgres.recordedRetention())
                // (Data with U+0000 is left out here: EventLog.read cuts it at the NUL, while scan keeps it.)
                _ = try await sqlite.log.append(try request("c", ["c1", "c\r2"]))
                _ = try await postgres.append(try request("c", ["c1", "c\r2"]))

                let filters: [EventFilter] = [
                    .everything,
                    EventFilter(stream: try StreamName(validating: "a")),
                    try EventFilter(patterns: ["orders.*"]),
                    try EventFilter(patterns: ["orders_*"]),
                    try EventFilter(patterns: ["a", "orders*"], types: ["message"]),
                    try EventFilter(patterns: ["*"], types: ["created", "updated"]),
                    EventFilter(stream: try StreamName(validating: "b")),
                ]
                for filter in filters {
                    for (after, limit, through) in [(0, 100, nil), (0, 2, nil), (3, 3, nil), (2, 100, Int64(9)), (20, 10, nil)]
                        as [(Int64, Int, Int64?)]
                    {
                        let query = ReadQuery(after: after, filter: filter, limit: limit, through: through)
                        let left = try await sqlite.log.read(query)
                        let right = try await postgres.read(query)
                        #expect(left.events.map(Timeless.init) == right.events.map(Timeless.init), "\(filter) after \(after)")
                        #expect(left.scannedThrough == right.scannedThrough, "\(filter) after \(after) limit \(limit)")
                        #expect(left.head == right.head)
                        let leftScan = try await sqlite.log.scan(query, into: [String]()) { out, raw in
                            out.append("\(raw.id) \(String(decoding: raw.type, as: UTF8.self)) \(String(decoding: raw.data, as: UTF8.self))")
                        }
                        let rightScan = try await postgres.scan(query, into: [String]()) { out, raw in
                            out.append("\(raw.id) \(String(decoding: raw.type, as: UTF8.self)) \(String(decoding: raw.data, as: UTF8.self))")
                        }
                        #expect(leftScan.output == rightScan.output)
                        #expect(leftScan.page.count == rightScan.page.count)
                        #expect(leftScan.page.firstID == rightScan.page.firstID)
                        #expect(leftScan.page.scannedThrough == rightScan.page.scannedThrough)
                        #expect(leftScan.page.head == rightScan.page.head)
                        #expect(leftScan.page.prunedThrough == rightScan.page.prunedThrough, "\(filter)")
                    }
                }
                #expect(try await sqlite.log.streams().map(TimelessStream.init) == postgres.streams().map(TimelessStream.init))
                for name in ["a", "b", "c", "orders.eu", "never"] {
                    let left = try await sqlite.log.status(ofStream: name)
                    let right = try await postgres.status(ofStream: name)
                    switch (left, right) {
                    case (.unknown, .unknown), (.deleted, .deleted): break
                    case (.live(let l), .live(let r)): #expect(TimelessStream(l) == TimelessStream(r))
                    default: Issue.record("stream \(name): \(left) on SQLite, \(right) on PostgreSQL")
                    }
                }
                #expect(try await sqlite.log.head() == postgres.head())
                for id in [Int64(1), 3, 6, 12, 14, 99] {
                    #expect(try await sqlite.log.event(id: id).map(Timeless.init) == postgres.event(id: id).map(Timeless.init))
                }
                // Cursors by time: before everything, after everything, and at each log's own time of event 12.
                #expect(try await sqlite.log.cursor(since: Timestamp(microseconds: 0)) == postgres.cursor(since: Timestamp(microseconds: 0)))
                let future = Timestamp(microseconds: Timestamp.now().microseconds + 3_600_000_000)
                #expect(try await sqlite.log.cursor(since: future) == postgres.cursor(since: future))
                let leftTime = try #require(try await sqlite.log.event(id: 12)).time
                let rightTime = try #require(try await postgres.event(id: 12)).time
                #expect(try await sqlite.log.cursor(since: leftTime) == postgres.cursor(since: rightTime))
                #expect(try await sqlite.log.isEmpty() == postgres.isEmpty())
                #expect(try await sqlite.log.expireIdempotencyKeys() == postgres.expireIdempotencyKeys())
                _ = try await verifyChain(database)
            }
        }
    }

    // MARK: - Data

    /// Event data comes back byte for byte: NUL (which PostgreSQL text cannot hold), a lone CR, CRLF, 4-byte
    /// characters, and the empty string.
    @Test func dataRoundTripsExactly() async throws {
        try await withDatabase { database in
            try await withLog(try database.configuration()) { log in
                let datas = ["a\u{0}b", "\u{0}", "\r", "line\r\nnext", "😀𝄞", "", "é\u{301}"]
                let result = try await log.append(try request("bytes", datas))
                let page = try await log.read(ReadQuery(after: 0, filter: .everything, limit: 100))
                #expect(page.events.map(\.data) == datas)
                #expect(page.events.map { Array($0.data.utf8) } == datas.map { Array($0.utf8) })
                let scanned = try await log.scan(ReadQuery(after: 0, filter: .everything, limit: 100), into: [[UInt8]]()) { out, raw in
                    out.append(Array(raw.data))
                }
                #expect(scanned.output == datas.map { Array($0.utf8) })
                #expect(result.ids == 1...Int64(datas.count))
                let checked = try await verifyChain(database)
                #expect(checked.count == datas.count)
            }
        }
    }

    // MARK: - Audit chain

    /// The audit chain verifies across the runs a stream deletion removed, in the middle and at the newest end of the
    /// log. (How a deleted stream behaves otherwise is tested on both backends in RewindStoreTests.)
    @Test func theChainVerifiesAcrossDeletedRuns() async throws {
        try await withDatabase { database in
            try await withLog(try database.configuration()) { log in
                _ = try await log.append(try request("keep", ["k1"]))
                _ = try await log.append(try request("gone", ["g1", "g2"]))
                #expect(try await log.deleteStream("gone"))
                #expect(try await log.append(try request("keep", ["k2"])).firstID == 4)
                #expect(try await verifyChain(database) == [1, 4])
                // Removing the newest events keeps the next id and chain position.
                #expect(try await log.deleteStream("keep"))
                #expect(try await log.append(try request("new", ["n1"])).firstID == 5)
                #expect(try await verifyChain(database) == [5])
            }
        }
    }

    // MARK: - Import

    /// Imported records keep their ids, times and hashes; the head and the chain continue after them.
    @Test func importKeepsIdsTimesAndHashesAndTheChainContinues() async throws {
        try await withDatabase { database in
            try await withLog(try database.configuration()) { log in
                #expect(try await log.isEmpty())
                var records: [ImportRecord] = []
                var previous = ChainHash.genesis
                for id in Int64(1)...6 {
                    let event = Event(
                        id: id,
                        stream: id <= 3 ? "old" : "kept",
                        type: "message",
                        data: "e\(id)\u{0}",
                        isJSON: false,
                        time: Timestamp(microseconds: 1_000_000 * id),
                        key: id == 5 ? "key" : nil
                    )
                    previous = ChainHash.hash(previous: previous, event: event)
                    if id == 2 {
                        records.append(.checkpoint(id: 2, hash: previous))
                        continue  // removed before the export
                    }
                    records.append(.event(event, hash: previous))
                }
                records.append(.streamState(name: "old", deletedAt: nil, prunedThrough: 2))
                records.append(.streamState(name: "dead", deletedAt: Timestamp(microseconds: 7), prunedThrough: 0))
                records.append(.head(9))
                try await log.importRecords(records)
                #expect(!(try await log.isEmpty()))
                #expect(try await log.head() == 9)
                let page = try await log.read(ReadQuery(after: 0, filter: .everything, limit: 100))
                #expect(page.events.map(\.id) == [1, 3, 4, 5, 6])
                #expect(page.events.map(\.time.microseconds) == [1, 3, 4, 5, 6].map { $0 * 1_000_000 })
                #expect(page.events[3].key == "key")
                #expect(page.events[0].data == "e1\u{0}")
                guard case .deleted = try await log.status(ofStream: "dead") else {
                    Issue.record("an imported tombstone is a tombstone")
                    return
                }
                let appended = try await log.append(try request("kept", ["new"]))
                #expect(appended.firstID == 10)
                #expect(appended.time.microseconds > 6_000_000)
                #expect(try await verifyChain(database) == [1, 3, 4, 5, 6, 10])
                let streams = try await log.streams().map(TimelessStream.init)
                #expect(streams.map(\.name) == ["kept", "old"])
                #expect(streams.first { $0.name == "old" }?.count == 2)
                #expect(streams.first { $0.name == "kept" }?.count == 4)
            }
        }
    }

    // MARK: - Schema

    /// Nodes starting at once on an empty database each find the schema ready; each migration is applied once.
    @Test func concurrentOpensOnAnEmptyDatabaseMigrateOnce() async throws {
        try await withDatabase { database in
            let configuration = try database.configuration()
            try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in 0..<6 {
                    group.addTask { try await withLog(configuration) { log in try await log.head() } }
                }
                for try await head in group { #expect(head == 0) }
            }
            let applied = try await database.query("SELECT name FROM rewind_migrations ORDER BY name", as: String.self)
            #expect(applied == ["0001_event_log", "0002_maintenance_record", "0003_commit_function", "0004_set_based_commit"])
        }
    }
}

/// The append of either backend, for loops over both.
struct AnyLog: Sendable {
    let appendRequest: @Sendable (AppendRequest) async throws -> AppendResult

    init(_ log: EventLog) { appendRequest = { try await log.append($0) } }
    init(_ log: PostgresEventLog) { appendRequest = { try await log.append($0) } }

    func append(_ request: AppendRequest) async throws -> AppendResult { try await appendRequest(request) }
}
