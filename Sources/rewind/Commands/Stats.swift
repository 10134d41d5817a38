import ArgumentParser
import RewindAdmin
import RewindStore

struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Summarise the log: events, bytes, id and time range, storage size, retention, per-stream counts.",
        discussion: """
            Opens the database read-only: safe while a server writes to it. The retention shown is the policy the \
            server or `rewind prune` last applied to this log. On PostgreSQL, database_bytes is \
            pg_database_size and wal_bytes and free_bytes are null. json and ndjson print one object (the \
            summary's fields and a "streams" array); csv prints the per-stream rows.

            Examples:
              rewind stats
              rewind stats --format json | jq .wal_bytes
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var output: FormatOptions

    func run() async throws {
        do {
            let stats = try await LogAccess.withCatalog(database.location) { try await $0.stats() }
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
