import ArgumentParser
import RewindAdmin
import RewindStore

struct Streams: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the streams with their counts, id and time ranges and sizes.",
        usage: "rewind streams [--db <path|url> | --server <url>] [<options>]",
        discussion: """
            Reads the database read-only (safe while a server writes to it), a SQLite file or a postgres:// URL, \
            or with --server the list a running server gives (GET /v1/streams): the streams the token may read, \
            with the columns the API carries (name, count, first_id, last_id, last_time, bytes). Deleted streams \
            are listed only from a database.

            Examples:
              rewind streams
              rewind streams --deleted --format csv
              rewind streams --server http://127.0.0.1:8080 --format json
            """
    )

    @OptionGroup var database: DatabaseOptions

    @OptionGroup var remote: RemoteReadOptions

    @Flag(help: "Also list deleted streams (tombstones).")
    var deleted = false

    @OptionGroup var output: FormatOptions

    func run() async throws {
        do {
            let table: OutputTable
            if let client = try remote.client(database: database) {
                if deleted { throw UsageFailure(message: "--deleted needs --db: a server lists only live streams") }
                let streams = try await client.streams()
                table = OutputTable(columns: StreamSummary.serverColumns, rows: streams.map(\.serverCells))
            } else {
                let streams = try await LogAccess.withCatalog(database.location) { try await $0.streams(includeDeleted: deleted) }
                table = OutputTable(columns: StreamSummary.columns, rows: streams.map(\.cells))
            }
            Terminal.print(table.render(output.resolved, width: Terminal.width))
        } catch {
            throw adminFailure(error)
        }
    }
}
