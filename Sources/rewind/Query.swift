import ArgumentParser
import RewindAdmin

struct Query: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Select events from the log file, with filters, as a table, JSON, NDJSON or CSV.",
        discussion: """
            Opens the database read-only: safe while a server writes to it. Every filter given must hold. Time
            bounds become id bounds (commit times never decrease along ids), so queries walk an index and stop at
            their limit: a stream's last 100 events come back in milliseconds however long the log is.

            Examples:
              rewind query --stream orders --limit 100 --reverse
              rewind query --stream 'orders.*' --type order.created --since 2h --format ndjson
              rewind query --where user.id=42 --where status=\\"paid\\" --format csv > paid.csv
              rewind query --after 1000 --before 2000 --contains timeout --limit 0
              rewind query --since 2026-11-21T00:00:00Z --until 2026-11-22T00:00:00Z --format json
              rewind query --stream orders --limit 100 --reverse --explain
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(name: .customLong("stream"), help: "A stream name, or a prefix pattern such as 'orders.*'; '*' for all (repeatable).")
    var streams: [String] = []

    @Option(name: .customLong("type"), help: "Only events of this type (repeatable).")
    var types: [String] = []

    @Option(help: "Only events with an id greater than this.")
    var after: Int64?

    @Option(help: "Only events with an id less than this.")
    var before: Int64?

    @Option(help: "Only events committed at or after this time: RFC 3339, or a duration ago such as 2h.")
    var since: String?

    @Option(help: "Only events committed before this time: RFC 3339, or a duration ago such as 30m.")
    var until: String?

    @Option(help: "Only events whose data contains this text (case-sensitive).")
    var contains: String?

    @Option(name: .customLong("where"), help: "Only events whose JSON data has this field equal to this value: user.id=42 (repeatable).")
    var fields: [String] = []

    @Option(help: "At most this many events; 0 for all.")
    var limit = 100

    @Flag(help: "Newest first: with --limit, the last events that match.")
    var reverse = false

    @Flag(help: "Print SQLite's plan for the query (EXPLAIN QUERY PLAN) instead of running it.")
    var explain = false

    @Flag(help: "Report on stderr how long opening the file and reading the events took.")
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

    func run() throws {
        do {
            let started = ContinuousClock.now
            let reader = try LogReader(path: database.db)
            if explain {
                Terminal.print(try reader.plan(try eventQuery()).map { $0 + "\n" }.joined())
                return
            }
            let events = try reader.events(try eventQuery())
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

struct Streams: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the log's streams with their counts, id and time ranges and sizes.",
        discussion: """
            Opens the database read-only: safe while a server writes to it.

            Examples:
              rewind streams
              rewind streams --deleted --format csv
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Flag(help: "Also list deleted streams (tombstones).")
    var deleted = false

    @OptionGroup var output: FormatOptions

    func run() throws {
        do {
            let streams = try LogReader(path: database.db).streams(includeDeleted: deleted)
            let table = OutputTable(columns: StreamSummary.columns, rows: streams.map(\.cells))
            Terminal.print(table.render(output.resolved, width: Terminal.width))
        } catch {
            throw adminFailure(error)
        }
    }
}

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise the log: events, bytes, id and time range, file and WAL size, retention, per-stream counts.",
        discussion: """
            Opens the database read-only: safe while a server writes to it. The retention shown is the policy the
            server or `rewind prune` last applied to this file. json and ndjson print one object (the summary's
            fields and a "streams" array); csv prints the per-stream rows.

            Examples:
              rewind stats
              rewind stats --format json | jq .wal_bytes
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: FormatOptions

    func run() throws {
        do {
            let stats = try LogReader(path: database.db).stats()
            let streams = OutputTable(columns: StreamSummary.columns, rows: stats.streams.map(\.cells))
            switch output.resolved {
            case .json, .ndjson: Terminal.print(stats.json + "\n")
            case .csv: Terminal.print(streams.render(.csv))
            case .table:
                let summary = OutputTable(columns: ["field", "value"], rows: stats.summary.rows)
                Terminal.print(summary.render(.table, width: Terminal.width) + "\n" + streams.render(.table, width: Terminal.width))
            }
        } catch {
            throw adminFailure(error)
        }
    }
}
