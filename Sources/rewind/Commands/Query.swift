import ArgumentParser
import RewindAdmin
import RewindStore

struct Query: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Select events, with filters, as a table, JSON, NDJSON or CSV.",
        usage: "rewind query [--db <path|url> | --server <url>] [<filters>] [<options>]",
        discussion: """
            Reads the database read-only (safe while a server writes to it): a SQLite file, or a PostgreSQL \
            database by its postgres:// URL; or with --server a running server's JSON read API, page by page. \
            Every filter given must hold. On a database, time bounds become id bounds (commit times never \
            decrease along ids), so queries walk an index and stop at their limit: a stream's last 100 events \
            come back in milliseconds however long the log is. On PostgreSQL, --where is checked on each row as \
            pages of the other conditions' matches arrive.

            With --server the output is the same, byte for byte, in every format. The server filters by stream, \
            type, --after, --since and --until; --before, --contains and --where are checked on each event as \
            the pages arrive, with the same rules as on a database. The token comes from --token or REWIND_TOKEN \
            and is never printed. --explain needs --db.

            Examples:
              rewind query --stream orders --limit 100 --reverse
              rewind query --stream 'orders.*' --type order.created --since 2h
              rewind query --where user.id=42 --where status=\\"paid\\" --format csv
              rewind query --after 1000 --before 2000 --contains timeout --limit 0
              rewind query --since 2026-11-21T00:00:00Z --until 2026-11-22T00:00:00Z
              rewind query --stream orders --limit 100 --reverse --explain
              rewind query --server http://127.0.0.1:8080 --stream orders --format ndjson
              rewind query --db postgres://rewind@db.internal/rewind --stream orders --limit 10
            """
    )

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var remote: RemoteReadOptions

    @Option(name: .customLong("stream"), help: "A stream name, or a prefix pattern such as 'orders.*'; '*' for all (repeatable).")
    var streams: [String] = []

    @Option(name: .customLong("type"), help: "Only events of this type (repeatable).")
    var types: [String] = []

    @Option(help: ArgumentHelp("Only events with an id greater than this.", valueName: "id"))
    var after: Int64?

    @Option(help: ArgumentHelp("Only events with an id less than this.", valueName: "id"))
    var before: Int64?

    @Option(help: ArgumentHelp("Only events committed at or after this time: RFC 3339, or a duration ago such as 2h.", valueName: "time"))
    var since: String?

    @Option(help: ArgumentHelp("Only events committed before this time: RFC 3339, or a duration ago such as 30m.", valueName: "time"))
    var until: String?

    @Option(help: ArgumentHelp("Only events whose data has this text (case-sensitive).", valueName: "text"))
    var contains: String?

    @Option(
        name: .customLong("where"),
        help: ArgumentHelp("Only events whose JSON data has this field equal to this value: user.id=42 (repeatable).", valueName: "field=value")
    )
    var fields: [String] = []

    @Option(help: "At most this many events; 0 for all.")
    var limit = 100

    @Flag(help: "Newest first; with --limit, the last matches.")
    var reverse = false

    @Flag(help: "Print the database's plan for the query (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN) instead of running it.")
    var explain = false

    @Flag(help: "Report on stderr how long reading the events took.")
    var timing = false

    @OptionGroup var output: FormatOptions

    func validate() throws {
        guard limit >= 0 else { throw ValidationError("--limit must be 0 (all) or more") }
        _ = try eventQuery()
    }

    func eventQuery() throws -> EventQuery {
        var query = EventQuery()
        query.streams = streams
        query.types = types
        query.after = after
        query.before = before
        query.since = try since.map { try parseTime($0, option: "--since") }
        query.until = try until.map { try parseTime($0, option: "--until") }
        query.text = contains
        do {
            query.fields = try fields.map(FieldMatch.init(parsing:))
        } catch {
            throw ValidationError("\(error)")
        }
        query.limit = limit == 0 ? nil : limit
        query.reverse = reverse
        return query
    }

    func run() async throws {
        do {
            let started = ContinuousClock.now
            let query = try eventQuery()
            let events: [StoredEvent]
            if let client = try remote.client(database: database) {
                if explain { throw UsageFailure(message: "--explain shows the database's plan: give --db, not --server") }
                events = try await client.events(query)
            } else {
                if explain {
                    let plan = try await LogAccess.withCatalog(database.location) { try await $0.plan(query) }
                    Terminal.print(plan.map { $0 + "\n" }.joined())
                    return
                }
                events = try await LogAccess.withCatalog(database.location) { try await $0.events(query) }
            }
            if timing {
                let elapsed = ContinuousClock.now - started
                let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
                Terminal.printError("\(events.count) events in \((milliseconds * 1000).rounded() / 1000) ms")
            }
            let table = OutputTable(columns: StoredEvent.columns, rows: events.map(\.cells))
            Terminal.print(table.render(output.resolved, width: Terminal.width))
        } catch {
            throw adminFailure(error)
        }
    }
}
