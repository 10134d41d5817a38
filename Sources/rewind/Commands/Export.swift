import ArgumentParser
import Foundation
import RewindAdmin
import RewindStore

struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the whole log as NDJSON: events with ids, times and hashes, checkpoints, stream states.",
        discussion: """
            Opens the database read-only and exports one snapshot, so a server may keep writing. Each line is one \
            JSON object; see the README ("Export and import") for the format. Progress goes to stderr.

            Examples:
              rewind export > log.ndjson
              rewind export --db /var/lib/rewind/log.sqlite --out log.ndjson
              rewind export --db log.sqlite | rewind import --db postgres://rewind@db.internal/rewind
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Write to this file instead of stdout.")
    var out: String?

    func run() async throws {
        do {
            let handle: FileHandle
            if let out {
                guard FileManager.default.createFile(atPath: out, contents: nil) else { throw AdminError("cannot create \(out)") }
                handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
            } else {
                handle = FileHandle.standardOutput
            }
            let progress = ProgressBar(label: "exporting", isTerminal: Terminal.standardError)
            let count = try await LogAccess.withCatalog(database.location) { catalog in
                try await catalog.export(progress: { progress.update($0, of: $1) }) { handle.write(Data($0.utf8)) }
            }
            progress.finish()
            if out != nil {
                try handle.close()
                Terminal.printError("exported \(count) events to \(out!)")
            }
        } catch {
            throw adminFailure(error)
        }
    }
}
