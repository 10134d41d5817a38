public import ArgumentParser
import Foundation
import RewindAdmin
import RewindCore
import RewindPostgres
public import RewindStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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
            report = try await LogAccess.withCatalog(database.location) { catalog in
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

extension IntegrityCheck: ExpressibleByArgument {}
