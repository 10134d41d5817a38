import ArgumentParser
import Foundation
import RewindAdmin
import RewindStore

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load an export into a new, empty log, keeping ids, times and hashes and checking the chain.",
        discussion: """
            Creates the database if needed (a SQLite file; a PostgreSQL database must exist, and gets Rewind's \
            tables); refuses one that already has events. Every event's hash is recomputed and must match the \
            export's, so a changed or truncated export is refused, naming the line.

            Examples:
              rewind import --db restored.sqlite log.ndjson
              rewind export --db old.sqlite | rewind import --db new.sqlite
              rewind export --db log.sqlite | rewind import --db postgres://rewind@db.internal/rewind
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Argument(help: "The export to read (default: stdin).")
    var file: String?

    func run() async throws {
        do {
            let input: FileHandle
            if let file {
                guard let handle = FileHandle(forReadingAtPath: file) else { throw AdminError("cannot read \(file)") }
                input = handle
            } else {
                input = FileHandle.standardInput
            }
            let location = database.location
            try await LogAccess.withLog(location, create: true) { log in
                var importer = try await Importer(log: log, location: location.description)
                let progress = ProgressBar(label: "importing (bytes read)", isTerminal: Terminal.standardError)
                var pending = Data()
                var bytesRead: Int64 = 0
                let total = (try? FileManager.default.attributesOfItem(atPath: file ?? "")[.size] as? Int64) ?? 0
                while true {
                    let chunk = input.readData(ofLength: 1 << 20)
                    if chunk.isEmpty { break }
                    bytesRead += Int64(chunk.count)
                    pending.append(chunk)
                    guard let lastNewline = pending.lastIndex(of: 0x0A) else { continue }
                    let text = String(decoding: pending[pending.startIndex...lastNewline], as: UTF8.self)
                    pending = Data(pending[pending.index(after: lastNewline)...])
                    for line in text.split(separator: "\n", omittingEmptySubsequences: false).dropLast() {
                        try await importer.add(line: line)
                    }
                    if total > 0 { progress.update(bytesRead, of: total) }
                }
                if !pending.isEmpty { try await importer.add(line: Substring(String(decoding: pending, as: UTF8.self))) }
                try await importer.finish()
                progress.finish()
                Terminal.printError("imported \(importer.events) events into \(location); chain verified, tip \(ChainHash.hex(importer.tip))")
            }
        } catch {
            throw adminFailure(error)
        }
    }
}
