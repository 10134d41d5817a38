import ArgumentParser
import Foundation
import RewindAdmin
import RewindStore

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the log to a new file, consistently, while a server writes.",
        discussion: """
            Uses SQLite's online backup API from one read snapshot of the database (opened read-only): the copy \
            holds every event committed before it started and none half-written. OUT must not exist. A log in \
            PostgreSQL is backed up with PostgreSQL's own tools (pg_dump), or copied with rewind export.

            Examples:
              rewind backup /backups/rewind-$(date +%F).sqlite
              rewind backup --db /var/lib/rewind/log.sqlite copy.sqlite && rewind verify --db copy.sqlite
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "The file to create.")
    var out: String

    func run() throws {
        do {
            guard case .sqlite(let path) = database.location else {
                throw AdminError("backup copies a SQLite file; for PostgreSQL use pg_dump (or rewind export for a portable copy)")
            }
            try LogReader(path: path).backup(to: out)
        } catch {
            throw adminFailure(error)
        }
        Terminal.printError("backed up \(database.path) to \(out)")
    }
}
