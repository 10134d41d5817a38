import Foundation
import RewindAdmin
import RewindCore
import RewindStore
import RewindTestSupport
import Testing

@Suite("rewind query, streams, stats")
struct QueryTests {
    func ids(_ log: TestLog, _ configure: (inout EventQuery) throws -> Void) async throws -> [Int64] {
        var query = EventQuery()
        try configure(&query)
        return try await log.read { try await $0.events(query) }.map(\.event.id)
    }

    @Test(arguments: Backend.all) func eachFilterAndTheirCombinations(backend: Backend) async throws {
        try await withKnownLog(backend) { log in try await checkEachFilterAndTheirCombinations(log) }
    }

    func checkEachFilterAndTheirCombinations(_ path: TestLog) async throws {
        #expect(try await ids(path) { _ in } == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(try await ids(path) { $0.streams = ["audit"] } == [3, 5])
        #expect(try await ids(path) { $0.streams = ["orders.*"] } == [1, 2, 4, 6, 7])
        #expect(try await ids(path) { $0.streams = ["orders.eu", "chat"] } == [1, 4, 6, 8])
        #expect(try await ids(path) { $0.streams = ["*"] } == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(try await ids(path) { $0.types = ["order.paid"] } == [4, 7])
        #expect(
            try await ids(path) {
                $0.after = 2; $0.before = 6
            } == [3, 4, 5]
        )
        #expect(try await ids(path) { $0.since = minute(3) } == [4, 5, 6, 7, 8])
        #expect(try await ids(path) { $0.until = minute(3) } == [1, 2, 3])
        #expect(
            try await ids(path) {
                $0.since = Timestamp(microseconds: minute(3).microseconds - 1); $0.until = Timestamp(microseconds: minute(5).microseconds + 1)
            } == [4, 5, 6]
        )
        #expect(try await ids(path) { $0.text = "time" } == [8])
        #expect(try await ids(path) { $0.text = "line two" } == [5])
        #expect(try await ids(path) { $0.fields = [try FieldMatch(parsing: "user.id=42")] } == [1, 4, 6])
        #expect(try await ids(path) { $0.fields = [try FieldMatch(parsing: "status=paid")] } == [4, 7])
        #expect(try await ids(path) { $0.fields = [try FieldMatch(parsing: "total=9.5")] } == [1])
        #expect(try await ids(path) { $0.fields = [try FieldMatch(parsing: #"user.id="42""#)] } == [], "a quoted value is text, and 42 is a number")
        #expect(try await ids(path) { $0.limit = 3 } == [1, 2, 3])
        #expect(
            try await ids(path) {
                $0.limit = 3; $0.reverse = true
            } == [8, 7, 6]
        )
        // Several streams with a limit: per-stream reads merged, the same answer as one statement would give.
        #expect(
            try await ids(path) {
                $0.streams = ["orders.*", "chat"]; $0.limit = 2; $0.reverse = true
            } == [8, 7]
        )
        #expect(
            try await ids(path) {
                $0.streams = ["orders.*", "chat"]; $0.limit = 3
            } == [1, 2, 4]
        )
        #expect(
            try await ids(path) {
                $0.streams = ["orders.*", "audit"]; $0.limit = 4; $0.types = ["message", "order.paid"]
            } == [3, 4, 5, 7]
        )
        #expect(
            try await ids(path) {
                $0.streams = ["nothing.*"]; $0.limit = 4
            } == []
        )
        // Combined: every condition holds at once.
        let combined: (inout EventQuery) throws -> Void = {
            $0.streams = ["orders.*"]
            $0.types = ["order.created"]
            $0.fields = [try FieldMatch(parsing: "user.id=42")]
        }
        #expect(try await ids(path) { try combined(&$0) } == [1, 6])
        #expect(
            try await ids(path) {
                try combined(&$0); $0.since = minute(1)
            } == [6]
        )
        #expect(
            try await ids(path) {
                try combined(&$0); $0.until = minute(5)
            } == [1]
        )
        #expect(
            try await ids(path) {
                try combined(&$0); $0.reverse = true; $0.limit = 1
            } == [6]
        )
        #expect(
            try await ids(path) {
                try combined(&$0); $0.text = "12"
            } == [6]
        )
        #expect(
            try await ids(path) {
                try combined(&$0); $0.after = 6
            } == []
        )
    }

    @Test(arguments: Backend.all) func everyOutputFormat(backend: Backend) async throws {
        var query = EventQuery()
        query.streams = ["orders.*", "audit"]
        query.types = ["order.created", "message"]
        query.since = minute(4)
        let events = try await withKnownLog(backend) { log in try await log.read { try await $0.events(query) } }
        let table = OutputTable(columns: StoredEvent.columns, rows: events.map(\.cells))
        #expect(
            table.render(.json)
                == #"[{"id":5,"stream":"audit","type":"message","data":"line one\nline two, with \"quotes\"","time":"2026-11-21T10:04:00.000000Z"},"#
                + #"{"id":6,"stream":"orders.eu","type":"order.created","data":{"user":{"id":42},"total":12},"time":"2026-11-21T10:05:00.000000Z","key":"k-6"}]"#
                + "\n"
        )
        #expect(
            table.render(.ndjson)
                == #"{"id":5,"stream":"audit","type":"message","data":"line one\nline two, with \"quotes\"","time":"2026-11-21T10:04:00.000000Z"}"#
                + "\n"
                + #"{"id":6,"stream":"orders.eu","type":"order.created","data":{"user":{"id":42},"total":12},"time":"2026-11-21T10:05:00.000000Z","key":"k-6"}"#
                + "\n"
        )
        #expect(
            table.render(.csv)
                == "id,stream,type,data,time,key\r\n"
                + "5,audit,message,\"line one\nline two, with \"\"quotes\"\"\",2026-11-21T10:04:00.000000Z,\r\n"
                + "6,orders.eu,order.created,\"{\"\"user\"\":{\"\"id\"\":42},\"\"total\"\":12}\",2026-11-21T10:05:00.000000Z,k-6\r\n"
        )
        #expect(
            table.render(.table)
                == """
                ID  STREAM     TYPE           TIME                         KEY  DATA
                5   audit      message        2026-11-21T10:04:00.000000Z       line one\\nline two, with "quotes"
                6   orders.eu  order.created  2026-11-21T10:05:00.000000Z  k-6  {"user":{"id":42},"total":12}

                """
        )
        // Cut to a terminal's width, each line ends in an ellipsis at exactly that width.
        let narrow = table.render(.table, width: 40).split(separator: "\n")
        #expect(narrow.count == 3)
        #expect(narrow.allSatisfy { $0.count <= 40 })
        #expect(narrow[1] == "5   audit      message        2026-11-2…")
        #expect(OutputTable(columns: StoredEvent.columns, rows: []).render(.json) == "[]\n")
    }

    @Test func theQueryPlanWalksAnIndex() async throws {
        let directory = try TemporaryDirectory()
        let path = try await knownLog(in: directory)
        var query = EventQuery()
        query.streams = ["orders.eu"]
        query.limit = 100
        query.reverse = true
        let plan = try LogReader(path: path).plan(query).joined(separator: "\n")
        #expect(plan.contains("USING INDEX events_by_stream (stream=?)") || plan.contains("USING COVERING INDEX events_by_stream"), "\(plan)")
        #expect(!plan.contains("TEMP B-TREE"), "no sort step: the index gives the order")
        query.streams = []
        query.since = minute(3)
        let byTime = try LogReader(path: path).plan(query).joined(separator: "\n")
        #expect(byTime.contains("INTEGER PRIMARY KEY"), "\(byTime)")
        query.streams = ["orders.*"]
        let merged = try LogReader(path: path).plan(query)
        #expect(merged.first == "MERGE OF 2 PER-STREAM READS, EACH:")
        #expect(merged.dropFirst().joined().contains("USING INDEX events_by_stream (stream=? AND id>?)"), "\(merged)")
    }

    /// PostgreSQL's plan: the stream's index (or the primary key backwards), no sort of every match.
    @Test(.needsPostgres())
    func thePostgreSQLPlanWalksAnIndex() async throws {
        try await withKnownLog(.postgres) { log in
            var query = EventQuery()
            query.streams = ["orders.eu"]
            query.limit = 100
            query.reverse = true
            let plan = try await log.read { try await $0.plan(query) }.joined(separator: "\n")
            #expect(plan.contains("Limit"), "\(plan)")
            #expect(plan.contains("Index"), "\(plan)")
            query.fields = [try FieldMatch(parsing: "user.id=42")]
            let paged = try await log.read { try await $0.plan(query) }
            #expect(paged.first?.contains("--where") == true, "\(paged)")
        }
    }

    @Test(arguments: Backend.all) func streamsAndStats(backend: Backend) async throws {
        try await withKnownLog(backend) { log in try await checkStreamsAndStats(log) }
    }

    func checkStreamsAndStats(_ log: TestLog) async throws {
        let reader = try await LogAccess.catalog(log.location)
        defer { Task { await reader.close() } }
        let streams = try await reader.streams(includeDeleted: false)
        #expect(streams.map(\.name) == ["audit", "chat", "orders.eu", "orders.us"])
        #expect(streams.map(\.count) == [2, 1, 3, 2])
        #expect(streams[2].firstID == 1 && streams[2].lastID == 6 && streams[2].firstTime == minute(0) && streams[2].lastTime == minute(5))
        let csv = OutputTable(columns: StreamSummary.columns, rows: streams.map(\.cells)).render(.csv)
        #expect(csv.hasPrefix("name,count,first_id,last_id,first_time,last_time,bytes,pruned_through,deleted_at\r\naudit,2,3,5,"))
        let stats = try await reader.stats()
        #expect(stats.events == 8)
        #expect(stats.bytes == Int64(knownEvents.reduce(0) { $0 + $1.data.utf8.count }))
        #expect(stats.firstID == 1 && stats.lastID == 8 && stats.head == 8)
        #expect(stats.firstTime == minute(0) && stats.lastTime == minute(7))
        #expect(stats.databaseBytes > 0)
        #expect(stats.retention == nil)
        let json = try #require(try JSONSerialization.jsonObject(with: Data(stats.json.utf8)) as? [String: Any])
        #expect(json["events"] as? Int == 8)
        #expect((json["streams"] as? [[String: Any]])?.count == 4)
        #expect(json["retention"] as? String == "none recorded")
    }
}
