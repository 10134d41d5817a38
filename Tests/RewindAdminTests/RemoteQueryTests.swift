import Foundation
import RewindAdmin
import RewindCore
import RewindServer
import RewindStore
import RewindTestSupport
import Testing

/// `rewind query --server` and `rewind streams --server`: the same answers as from the file, through the HTTP API.
@Suite("rewind query and streams against a server")
struct RemoteQueryTests {
    static let secret = "remote-query-secret-0123456789-abcdefghij"

    static func token(subscribe: [String]) async throws -> String {
        try await TokenMinter.sign(
            AccessClaims(subject: "reader", expires: Date().addingTimeInterval(3600), scopes: .init(subscribe: subscribe)),
            with: .secret(secret)
        )
    }

    /// The output, as bytes: `String ==` would call canonically equivalent but different texts equal.
    static func ndjson(_ events: [StoredEvent]) -> [UInt8] {
        Array(OutputTable(columns: StoredEvent.columns, rows: events.map(\.cells)).render(.ndjson).utf8)
    }

    @Test func theBinaryPrintsTheSameBytesFromTheFileAndFromTheServer() async throws {
        let directory = try TemporaryDirectory()
        let path = try await knownLog(in: directory)
        try await withServer(path: path) { base, path in
            let filterSets: [[String]] = [
                [],
                ["--limit", "0"],
                ["--stream", "orders.*", "--type", "order.created", "--where", "user.id=42", "--since", "2026-11-21T10:00:30Z"],
                ["--stream", "audit", "--contains", "line"],
                ["--type", "order.paid", "--where", "status=paid", "--reverse"],
                ["--after", "2", "--before", "8", "--limit", "0"],
                ["--stream", "orders.*", "--stream", "chat", "--limit", "2", "--reverse"],
                ["--until", "2026-11-21T10:05:00Z", "--where", "total=12", "--limit", "0"],
                ["--stream", "nothing.*"],
                ["--until", "1m", "--limit", "3", "--reverse", "--contains", "\""],
            ]
            for filters in filterSets {
                for format in ["table", "json", "ndjson", "csv"] {
                    let file = try rewind(["query", "--db", path, "--format", format] + filters)
                    let server = try rewind(["query", "--server", base, "--format", format] + filters)
                    #expect(file.status == 0 && server.status == 0, "\(filters) \(format): \(file.stderr) \(server.stderr)")
                    #expect(Array(server.stdout.utf8) == Array(file.stdout.utf8), "\(filters) --format \(format)")
                    #expect(!file.stdout.isEmpty || format == "ndjson", "\(filters) --format \(format) printed nothing")
                }
            }
            // The table of one known case, to be sure both are not equally empty.
            let table = try rewind(["query", "--server", base, "--format", "table", "--after", "6", "--before", "9"])
            #expect(
                table.stdout == """
                    ID  STREAM     TYPE        TIME                         KEY  DATA
                    7   orders.us  order.paid  2026-11-21T10:06:00.000000Z       {"user":{"id":7},"status":"paid"}
                    8   chat       message     2026-11-21T10:07:00.000000Z       timeout while waiting

                    """
            )
            // Streams: the columns the API carries, filled as the file's listing fills them.
            let streams = try LogReader(path: path).streams()
            for format in OutputFormat.allCases {
                let server = try rewind(["streams", "--server", base, "--format", format.rawValue])
                #expect(server.status == 0, "\(server.stderr)")
                #expect(server.stdout == OutputTable(columns: StreamSummary.serverColumns, rows: streams.map(\.serverCells)).render(format))
            }
            let csv = try rewind(["streams", "--server", base, "--format", "csv"])
            #expect(csv.stdout.hasPrefix("name,count,first_id,last_id,last_time,bytes\r\naudit,2,3,5,2026-11-21T10:04:00.000000Z,40\r\n"))
            // --timing reports without changing the output.
            let timed = try rewind(["query", "--server", base, "--format", "ndjson", "--timing"])
            #expect(timed.stderr.hasPrefix("8 events in "), "\(timed.stderr)")
        }
    }

    /// Random logs and random queries: paging (pages as small as one event), the backward windows of `--reverse`,
    /// and the filters checked on this side must give exactly what the file gives.
    @Test(arguments: [1, 2, 7])
    func randomQueriesAgreeWithTheFile(generatorSeed: UInt64) async throws {
        var random = SeededRandom(seed: generatorSeed)
        let directory = try TemporaryDirectory()
        let path = directory.path("random.sqlite")
        let log = try openLog(path)
        try await seed(log, Self.randomEvents(count: 200, using: &random))
        log.close()
        let reader = try LogReader(path: path)
        try await withServer(path: path) { base, _ in
            let client = try ServerClient(server: base)
            var random = SeededRandom(seed: generatorSeed &+ 1000)
            for round in 0..<100 {
                let query = Self.randomQuery(using: &random)
                let pageSize = [1, 3, 10, 10_000, 10_000].randomElement(using: &random)!
                let expected = try reader.events(query)
                let received = try await client.events(query, pageSize: pageSize)
                let same = Self.ndjson(received) == Self.ndjson(expected)
                #expect(
                    same,
                    "round \(round), page size \(pageSize): \(query) gave \(received.map(\.event.id)), the file \(expected.map(\.event.id))"
                )
            }
        }
    }

    @Test func refusalsAndErrorsAreOneLineAndNeverShowTheToken() async throws {
        let directory = try TemporaryDirectory()
        let path = try await knownLog(in: directory)
        let secretToken = try await Self.token(subscribe: ["audit"])
        try await withServer(path: path, configure: { $0.auth = .secret(Self.secret) }) { base, path in
            func expectOneLine(_ result: CommandResult, status: Int32, _ prefix: String, sourceLocation: SourceLocation = #_sourceLocation) {
                #expect(result.status == status, "\(result.stderr)", sourceLocation: sourceLocation)
                #expect(result.stderr.hasPrefix(prefix), "\(result.stderr)", sourceLocation: sourceLocation)
                #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)", sourceLocation: sourceLocation)
                #expect(result.stdout.isEmpty, sourceLocation: sourceLocation)
                #expect(!(result.stdout + result.stderr).contains(secretToken), "the token was echoed", sourceLocation: sourceLocation)
            }
            // Usage: exit 2, one line.
            expectOneLine(try rewind(["query", "--db", path, "--server", base]), status: 2, "rewind: give --db or --server, not both")
            expectOneLine(try rewind(["streams", "--db", path, "--server", base]), status: 2, "rewind: give --db or --server, not both")
            expectOneLine(
                try rewind(["query", "--server", base, "--explain"]),
                status: 2,
                "rewind: --explain shows the database's plan: give --db, not --server"
            )
            expectOneLine(try rewind(["streams", "--server", base, "--deleted"]), status: 2, "rewind: --deleted needs --db")
            expectOneLine(try rewind(["query", "--db", path, "--token", secretToken]), status: 2, "rewind: --token goes with --server")
            // No token, a token without the scope, a token that does not verify: the server's detail, exit 1.
            expectOneLine(
                try rewind(["query", "--server", base]),
                status: 1,
                "rewind: reading events answered 401 Unauthorized: a token is required"
            )
            expectOneLine(try rewind(["streams", "--server", base]), status: 1, "rewind: listing streams answered 401 Unauthorized")
            expectOneLine(
                try rewind(["query", "--server", base, "--stream", "orders.eu", "--timing"], environment: ["REWIND_TOKEN": secretToken]),
                status: 1,
                "rewind: reading events answered 403 Forbidden: "
            )
            expectOneLine(
                try rewind(["query", "--server", base, "--token", secretToken + "x", "--stream", "audit"]),
                status: 1,
                "rewind: reading events answered 401 Unauthorized: invalid token"
            )
            // A filter the server refuses: its problem's detail.
            expectOneLine(
                try rewind(["query", "--server", base, "--token", secretToken, "--stream", "audit", "--type", "bad type"]),
                status: 1,
                "rewind: reading events answered 400 Bad Request: type=bad type is not a valid event type"
            )
            expectOneLine(
                try rewind(["query", "--server", base, "--token", secretToken, "--stream", "bad name!"]),
                status: 1,
                "rewind: reading events answered 4"
            )
            // Unreachable, and not a URL.
            expectOneLine(
                try rewind(["query", "--server", "http://127.0.0.1:9", "--token", secretToken]),
                status: 1,
                "rewind: cannot reach http://127.0.0.1:9"
            )
            expectOneLine(try rewind(["streams", "--server", "ftp://x", "--token", secretToken]), status: 1, "rewind: --server 'ftp://x' is not")
            // With the scope it needs, through REWIND_TOKEN, with --timing: events, and the token nowhere.
            let allowed = try rewind(
                ["query", "--server", base, "--stream", "audit", "--format", "ndjson", "--timing"],
                environment: ["REWIND_TOKEN": secretToken]
            )
            #expect(allowed.status == 0, "\(allowed.stderr)")
            #expect(allowed.stdout.split(separator: "\n").count == 2)
            #expect(!(allowed.stdout + allowed.stderr).contains(secretToken))
            let listed = try rewind(["streams", "--server", base, "--token", secretToken, "--format", "csv"])
            #expect(
                listed.stdout.split(separator: "\r\n").map { $0.split(separator: ",")[0] } == ["name", "audit"],
                "only the streams the token may read"
            )
            // Help never shows a token taken from the environment.
            for command in ["query", "streams", "tail", "publish"] {
                let help = try rewind([command, "--help"], environment: ["REWIND_TOKEN": secretToken])
                #expect(help.status == 0)
                #expect(!help.stdout.contains(secretToken), "rewind \(command) --help shows the token")
            }
        }
    }

    // MARK: - Random logs and queries

    static let streamNames = ["a", "a.x", "a.y", "b", "c.d"]
    static let types = ["t1", "t2", "t3"]

    /// Events a minute apart over a few streams: JSON objects with numbers, booleans, nulls, nested values and
    /// escapes, and text, some of which is itself valid JSON (SQLite's `json_valid` does not look at how it was sent).
    static func randomEvents(count: Int, using random: inout SeededRandom) -> [Event] {
        let texts = [
            "plain text", #"{"n":1,"s":"abc"}"#, "[1,2,3]", "line one\nline two", "tab\there", "é and e\u{301}", "",
            #"{"flag":true}"#, "1", #"{"n": 2 , "s":"x"}"#, "{not json", "a\u{2028}b", "😀 4-byte",
        ]
        let jsons = [
            #"{"n":1,"s":"abc","flag":true}"#, #"{"n":2,"f":1.5,"flag":false,"nested":{"k":null}}"#, #"{"n":1.0,"s":"1"}"#,
            #"{"n":9223372036854775807,"arr":[1,"x",{"k":2}]}"#, #"{"n":1e0,"s":"\u00e9"}"#, #"{"s":"é","nested":{"k":"v"}}"#,
            #"{"n":-0,"flag":null,"arr":[]}"#, #"[{"n":1},{"n":2}]"#, #"{"n":1,"n":2}"#, "42", "true", #"{"user":{"id":42}}"#,
            #"{"s":"a\"b","arr":[true,false]}"#, #"{"0":"zero","arr":["y"]}"#,
        ]
        var events: [Event] = []
        for index in 1...count {
            let isJSON = Bool.random(using: &random)
            events.append(
                Event(
                    id: Int64(index),
                    stream: streamNames.randomElement(using: &random)!,
                    type: types.randomElement(using: &random)!,
                    data: isJSON ? jsons.randomElement(using: &random)! : texts.randomElement(using: &random)!,
                    isJSON: isJSON,
                    time: minute(Int64(index)),
                    key: Int.random(in: 0..<10, using: &random) == 0 ? "k-\(index)" : nil
                )
            )
        }
        return events
    }

    static func randomQuery(using random: inout SeededRandom) -> EventQuery {
        func maybe(_ chance: Int = 3) -> Bool { Int.random(in: 0..<chance, using: &random) == 0 }
        var query = EventQuery()
        if maybe(2) {
            let pool = streamNames + ["a.*", "c.*", "*", "none"]
            query.streams = (0..<Int.random(in: 1...3, using: &random)).map { _ in pool.randomElement(using: &random)! }
        }
        if maybe() { query.types = [types.randomElement(using: &random)!] }
        if maybe() { query.after = Int64.random(in: -1...210, using: &random) }
        if maybe() { query.before = Int64.random(in: 0...210, using: &random) }
        if maybe(4) { query.since = minute(Int64.random(in: 0...210, using: &random)) }
        if maybe(4) { query.until = minute(Int64.random(in: 0...210, using: &random)) }
        if maybe(4) { query.text = ["1", "x", "\"n\":1", "e\u{301}", "é", "", "line"].randomElement(using: &random)! }
        if maybe(2) {
            let conditions = [
                "n=1", "n=2", "n=1.0", "f=1.5", "flag=true", "flag=false", "flag=1", "flag=null", "s=abc", #"s="1""#, "s=1", "s=é",
                "nested.k=null", "nested.k=v", "arr.0=1", "arr.1=x", "arr.2.k=2", "arr.0=true", "user.id=42", "n=9223372036854775807",
                "0=zero", "n=-0", #"s=a"b"#,
            ]
            query.fields = (0..<Int.random(in: 1...2, using: &random)).map { _ in try! FieldMatch(parsing: conditions.randomElement(using: &random)!)
            }
        }
        query.limit = [nil, 1, 3, 7, 50].randomElement(using: &random)!
        query.reverse = maybe(2)
        return query
    }
}
