import ArgumentParser
import Foundation
import RewindAdmin
import RewindStore

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recompute the audit chain and check the file's integrity; name the first event that does not match.",
        discussion: """
            Opens the database read-only and checks one snapshot, so a server may keep writing. Every event's hash \
            is recomputed from its predecessor's (or the checkpoint pruning left) and its id, stream, type, time \
            and data; then, on a SQLite file, SQLite's own integrity_check runs. Exits 0 when both pass, 1 \
            otherwise, with the first event that does not match (id, stream, what differs). Progress is shown on \
            stderr.

            On PostgreSQL (--db postgres://...) the chain is the whole check: --integrity names SQLite's file \
            checks, which PostgreSQL has no counterpart of for an ordinary role (page checks need the amcheck \
            extension; run pg_amcheck as a superuser for those). The result line says so.

            Examples:
              rewind verify
              rewind verify --db backup.sqlite --integrity quick
              rewind verify --db postgres://rewind@db.internal/rewind
            """
    )

    @OptionGroup var database: DatabaseOptions

    @Option(help: "SQLite's own check: full (integrity_check), quick (quick_check) or none. PostgreSQL: the chain only.")
    var integrity: IntegrityCheck = .full

    func run() async throws {
        let report: VerifyReport
        do {
            report = try await withCatalog(database) { catalog in
                let progress = ProgressBar(label: "verifying", isTerminal: Terminal.standardError)
                let report = try await catalog.verify(integrity: integrity) { progress.update($0, of: $1) }
                progress.finish()
                return report
            }
        } catch {
            throw adminFailure(error)
        }
        if let failure = report.failure {
            throw CommandFailure(message: "chain broken at \(failure)")
        }
        if let lines = report.integrity, lines != ["ok"] {
            throw CommandFailure(message: "integrity check failed: " + lines.prefix(5).joined(separator: "; "))
        }
        let storage: String
        switch (database.location, integrity) {
        case (.postgres, _): storage = "storage not checked (PostgreSQL: the chain is the check)"
        case (.sqlite, .none): storage = "integrity not checked"
        case (.sqlite, _): storage = "integrity ok"
        }
        Terminal.print("ok: \(report.verified) events, \(report.checkpoints) checkpoints, chain tip \(ChainHash.hex(report.tip)), \(storage)\n")
    }
}

struct Prune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove what a retention policy no longer keeps, leaving checkpoints so the chain still verifies.",
        usage: "rewind prune [--db <path|url>] <retention options> [<options>]",
        discussion: """
            Takes the same retention options as `rewind serve` and applies them once, in short transactions, so a \
            running server keeps appending. Each run of removed events leaves a checkpoint (the last removed id and \
            its hash) for `rewind verify`; on SQLite freed pages go back to the file system (incremental vacuum). \
            Works the same on a postgres:// URL, beside servers sharing the database. With --dry-run nothing is \
            removed: the report shows what would go.

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
            let policy = try retention.policy()
            report = try await LogAccess.withLog(database.location, create: false) { log in
                if dryRun { return try await log.pruneCandidates(policy, now: .now()) }
                return try await log.prune(policy, now: .now(), chunk: 10_000)
            }
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
            let count = try await withCatalog(database) { catalog in
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
