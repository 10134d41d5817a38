import ArgumentParser
import Foundation
import Logging
import RewindAdmin
import RewindStore

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recompute the audit chain and check the file's integrity; name the first event that does not match.",
        discussion: """
            Opens the database read-only and checks one snapshot, so a server may keep writing. Every event's hash \
            is recomputed from its predecessor's (or the checkpoint pruning left) and its id, stream, type, time \
            and data; then SQLite's PRAGMA integrity_check runs. Exits 0 when both pass, 1 otherwise, with the \
            first event that does not match (id, stream, what differs). Progress is shown on stderr.

            Examples:
              rewind verify
              rewind verify --db backup.sqlite --integrity quick
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(help: "SQLite's own check: full (integrity_check), quick (quick_check) or none.")
    var integrity: IntegrityCheck = .full

    func run() throws {
        let report: VerifyReport
        do {
            let reader = try LogReader(path: database.path)
            let progress = ProgressBar(label: "verifying", isTerminal: Terminal.standardError)
            report = try reader.verify(integrity: integrity) { progress.update($0, of: $1) }
            progress.finish()
        } catch {
            throw adminFailure(error)
        }
        if let failure = report.failure {
            throw CommandFailure(message: "chain broken at \(failure)")
        }
        guard report.integrity == ["ok"] else {
            throw CommandFailure(message: "integrity check failed: " + report.integrity.prefix(5).joined(separator: "; "))
        }
        Terminal.print(
            "ok: \(report.verified) events, \(report.checkpoints) checkpoints, chain tip \(ChainHash.hex(report.tip)), integrity \(integrity.rawValue == "none" ? "not checked" : "ok")\n"
        )
    }
}

struct Prune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove what a retention policy no longer keeps, leaving checkpoints so the chain still verifies.",
        usage: "rewind prune [--db <path>] <retention options> [<options>]",
        discussion: """
            Takes the same retention options as `rewind serve` and applies them once, in short transactions, so a \
            running server keeps appending. Each run of removed events leaves a checkpoint (the last removed id and \
            its hash) for `rewind verify`; freed pages go back to the file system (incremental vacuum). With \
            --dry-run nothing is removed: the report shows what would go.

            Examples:
              rewind prune --retention-max-age 30d --dry-run
              rewind prune --retention-max-events 100000 \\
                --stream-retention 'audit.*:max-age=365d'
            """
    )

    @OptionGroup var database: DatabaseOptions
    @OptionGroup var retention: RetentionOptions

    @Flag(help: "Show what would be removed without removing it.")
    var dryRun = false

    @OptionGroup var output: FormatOptions

    func validate() throws {
        let policy = try retention.policy()
        guard !policy.isUnlimited else {
            throw ValidationError("give a policy: --retention-max-age, --retention-max-events or --stream-retention")
        }
    }

    func run() async throws {
        let report: PruneReport
        do {
            guard FileManager.default.fileExists(atPath: database.path) else { throw AdminError("no database at \(database.path)") }
            var logger = Logger(label: "rewind")
            logger.logLevel = .warning
            let log = try EventLog(configuration: StoreConfiguration(path: database.path), logger: logger)
            defer { log.close() }
            let policy = try retention.policy()
            report = dryRun ? try await log.pruneCandidates(policy) : try await log.prune(policy)
        } catch let error as StoreError {
            throw CommandFailure(message: error.description)
        } catch {
            throw adminFailure(error)
        }
        let rows: [[Cell]] = report.counts.keys.sorted().map { name in
            [.text(name), .integer(report.counts[name] ?? 0), .integer(report.streams[name] ?? 0)]
        }
        let table = OutputTable(columns: ["stream", dryRun ? "would_remove" : "removed", "through_id"], rows: rows)
        Terminal.print(table.render(output.resolved, width: Terminal.width))
        if output.resolved == .table {
            Terminal.print("\(dryRun ? "would remove" : "removed") \(report.events) events, \(report.bytes) bytes of data\n")
        }
    }
}

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the log to a new file, consistently, while a server writes.",
        discussion: """
            Uses SQLite's online backup API from one read snapshot of the database (opened read-only): the copy \
            holds every event committed before it started and none half-written. OUT must not exist.

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
            try LogReader(path: database.path).backup(to: out)
        } catch {
            throw adminFailure(error)
        }
        Terminal.printError("backed up \(database.path) to \(out)")
    }
}

struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write the whole log as NDJSON: events with ids, times and hashes, checkpoints, stream states.",
        discussion: """
            Opens the database read-only and exports one snapshot, so a server may keep writing. Each line is one \
            JSON object; see the README ("Export and import") for the format. Progress goes to stderr.

            Examples:
              rewind export > log.ndjson
              rewind export --db /var/lib/rewind/log.sqlite --out log.ndjson
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(help: "Write to this file instead of stdout.")
    var out: String?

    func run() throws {
        do {
            let reader = try LogReader(path: database.path)
            let handle: FileHandle
            if let out {
                guard FileManager.default.createFile(atPath: out, contents: nil) else { throw AdminError("cannot create \(out)") }
                handle = try FileHandle(forWritingTo: URL(fileURLWithPath: out))
            } else {
                handle = FileHandle.standardOutput
            }
            let progress = ProgressBar(label: "exporting", isTerminal: Terminal.standardError)
            let count = try reader.export(progress: { progress.update($0, of: $1) }) { handle.write(Data($0.utf8)) }
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

struct Import: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load an export into a new, empty log, keeping ids, times and hashes and checking the chain.",
        discussion: """
            Creates the database if needed; refuses one that already has events. Every event's hash is \
            recomputed and must match the export's, so a changed or truncated export is refused, naming the line.

            Examples:
              rewind import --db restored.sqlite log.ndjson
              rewind export --db old.sqlite | rewind import --db new.sqlite
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
            var logger = Logger(label: "rewind")
            logger.logLevel = .warning
            let log = try EventLog(configuration: StoreConfiguration(path: database.path), logger: logger)
            defer { log.close() }
            var importer = try await Importer(log: log)
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
            Terminal.printError("imported \(importer.events) events into \(database.path); chain verified, tip \(ChainHash.hex(importer.tip))")
        } catch let error as StoreError {
            throw CommandFailure(message: error.description)
        } catch {
            throw adminFailure(error)
        }
    }
}
