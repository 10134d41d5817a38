import ArgumentParser
import Foundation
import RewindAdmin
import RewindStore

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
