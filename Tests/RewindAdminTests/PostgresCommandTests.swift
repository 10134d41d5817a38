import Foundation
import RewindAdmin
import RewindCore
import RewindPostgres
import RewindStore
import RewindTestSupport
import Testing

/// The admin commands on a PostgreSQL URL, through the built binary: the migration path from a SQLite file, what
/// only PostgreSQL answers (backup's refusal), and settings that cannot work.
@Suite("rewind commands on PostgreSQL", .needsPostgres())
struct PostgresCommandTests {
    /// The test cluster's password, which no output may show.
    static var password: String { URLComponents(string: PostgresTestCluster.url ?? "")?.password ?? "no password" }

    /// `rewind export --db log.sqlite | rewind import --db postgres://…`, as a shell runs it: ids, times, hashes,
    /// checkpoints, tombstones and the head arrive intact, so the PostgreSQL log exports the very same lines,
    /// `verify` passes on it, and new events continue after the old head, chained on.
    @Test func theMigrationPathThroughAPipeKeepsIdsTimesAndHashes() async throws {
        try await withTestLog(.sqlite) { sqlite in
            try await sqlite.write { log in
                try await writeExportable(
                    log,
                    keep: 5,
                    deleted: "c gone",
                    json: [NewEvent(data: #"{"k":[1,2.50],"s":"é\u0000"}"#, isJSON: true), NewEvent(data: "text\nwith a NUL \u{0}")]
                )
            }
            try await withTestLog(.postgres) { postgres in
                let process = Process()
                process.executableURL = URL(fileURLWithPath: "/bin/sh")
                process.arguments = ["-c", #"set -e; "$REWIND" export --db "$SOURCE" | "$REWIND" import --db "$TARGET""#]
                var environment = ProcessInfo.processInfo.environment
                environment["REWIND"] = packageRoot.appendingPathComponent(".build/debug/rewind").path
                environment["SOURCE"] = sqlite.db
                environment["TARGET"] = postgres.db
                environment.removeValue(forKey: "REWIND_DB")
                process.environment = environment
                let errors = Pipe()
                process.standardError = errors
                try process.run()
                let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                #expect(process.terminationStatus == 0, "\(stderr)")
                #expect(stderr.contains("imported 12 events into postgres://"), "\(stderr)")
                #expect(!stderr.contains(Self.password))

                let fromFile = try rewind(["export", "--db", sqlite.db])
                let fromDatabase = try rewind(["export", "--db", postgres.db])
                #expect(fromDatabase.status == 0, "\(fromDatabase.stderr)")
                #expect(fromDatabase.stdout == fromFile.stdout, "the PostgreSQL log exports the same lines as the file it came from")
                #expect(fromFile.stdout.contains(#""checkpoint":"#) && fromFile.stdout.contains(#""stream_state":"c""#))

                let verify = try rewind(["verify", "--db", postgres.db])
                #expect(verify.status == 0, "\(verify.stderr)")
                let tip = try await sqlite.read { try await $0.verify() }.tip
                #expect(verify.stdout.contains("chain tip \(ChainHash.hex(tip))"), "\(verify.stdout)")
                for arguments in [["query", "--limit", "0", "--format", "ndjson"], ["streams", "--deleted", "--format", "csv"]] {
                    let file = try rewind(arguments + ["--db", sqlite.db])
                    let database = try rewind(arguments + ["--db", postgres.db])
                    #expect(database.status == 0, "\(database.stderr)")
                    #expect(database.stdout == file.stdout, "\(arguments)")
                }

                let head = try await sqlite.read { try await $0.stats().head }
                #expect(try await postgres.write { try await append($0, "a", ["after the move"]) }.firstID == head + 1)
                #expect(try rewind(["verify", "--db", postgres.db]).status == 0)
            }
        }
    }

    @Test func backupRefusesPostgreSQLPointingToPgDump() async throws {
        try await withKnownLog(.postgres) { log in
            let out = log.directory.path("copy.sqlite")
            let result = try rewind(["backup", "--db", log.db, out])
            #expect(result.status == 1)
            #expect(result.stderr.hasPrefix("rewind: backup copies a SQLite file; for PostgreSQL use pg_dump"), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1)
            #expect(!FileManager.default.fileExists(atPath: out))
            // REWIND_DB names the database as --db does.
            let environment = try rewind(["stats", "--format", "json"], environment: ["REWIND_DB": log.db])
            #expect(environment.status == 0, "\(environment.stderr)")
            #expect(environment.stdout.contains(#""events":8"#))
        }
    }

    /// A wrong password, a missing database, a malformed URL, a database without a log: every command exits 1
    /// with one line naming the problem, and the password never shows.
    @Test func settingsThatCannotWorkFailOnOneLineWithoutThePassword() async throws {
        try await withTestLog(.postgres) { log in
            var wrongPassword = try #require(URLComponents(string: log.db))
            wrongPassword.password = "not-the-password-\(Self.password.prefix(4))x"
            var missing = try #require(URLComponents(string: log.db))
            missing.path = "/no_such_database"
            let cases: [(url: String, says: String)] = [
                (wrongPassword.string!, "refused user"),
                (missing.string!, "has no database no_such_database"),
                ("postgres://rewind:\(Self.password)@/rewind", "names no host"),
                ("postgresql://rewind:\(Self.password)@127.0.0.1:5432/rewind?sslmode=sometimes", "sslmode=sometimes is not known"),
                (log.db, "holds no Rewind log"),
            ]
            let commands: [[String]] = [
                ["query"], ["streams"], ["stats"], ["verify"], ["export"], ["prune", "--retention-max-events", "1"], ["import"],
            ]
            for (url, says) in cases {
                for command in commands {
                    // The empty database is a fine target for prune (it migrates) and import (empty input).
                    if url == log.db, command[0] == "prune" || command[0] == "import" { continue }
                    let result = try rewind(command + ["--db", url], stdin: "")
                    #expect(result.status == 1, "\(command) \(says): \(result.stdout) \(result.stderr)")
                    #expect(result.stderr.hasPrefix("rewind: "), "\(command) \(says): \(result.stderr)")
                    #expect(result.stderr.contains(says), "\(command): \(result.stderr)")
                    #expect(result.stderr.split(separator: "\n").count == 1, "\(command) \(says): \(result.stderr)")
                    #expect(!result.stderr.contains(Self.password) && !result.stdout.contains(Self.password), "\(command) \(says)")
                    #expect(!result.stderr.contains("not-the-password"), "\(command) \(says)")
                }
            }
        }
    }

    /// A walk and a `--where` query cross pages without losing or repeating a row: with pages of a few rows the
    /// catalog gives the answers it gives in one page, and a row deleted at any page boundary is still named.
    @Test(arguments: [1, 2, 5]) func pagesOfAFewRowsGiveTheSameAnswers(pageSize: Int) async throws {
        try await withKnownLog(.postgres) { log in
            try await log.write { store in
                try await writeRounds(store)
                _ = try await store.prune(RetentionPolicy(defaults: .init(maxEvents: 6)), now: .now(), chunk: 10_000)
            }
            let configuration = try PostgresStoreConfiguration(url: log.db, environment: [:])
            let paged = try await PostgresCatalog.open(configuration: configuration, logger: LogAccess.quietLogger, pageSize: pageSize)
            let whole = try await PostgresCatalog.open(configuration: configuration, logger: LogAccess.quietLogger)
            func exported(_ catalog: PostgresCatalog) async throws -> String {
                var text = ""
                try await catalog.export { text += $0 }
                return text
            }
            let report = try await paged.verify()
            let expected = try await whole.verify()
            #expect(report.passed && expected.passed, "\(String(describing: report.failure))")
            #expect(report.verified == expected.verified && report.tip == expected.tip && report.checkpoints == expected.checkpoints)
            #expect(try await exported(paged) == (try await exported(whole)))
            var query = EventQuery()
            query.fields = [try FieldMatch(parsing: "user.id=42")]
            #expect(try await paged.events(query).map(\.event.id) == [1, 4, 6])
            query.limit = 2
            #expect(try await paged.events(query).map(\.event.id) == [1, 4])
            query.reverse = true
            #expect(try await paged.events(query).map(\.event.id) == [6, 4])
            query.limit = nil
            query.fields = [try FieldMatch(parsing: "status=paid")]
            query.streams = ["orders.*"]
            #expect(try await paged.events(query).map(\.event.id) == [7, 4])
            await paged.close()
            await whole.close()
            // A row deleted by hand, wherever the page boundaries fall: the next row names it.
            let ids = try await log.read { try await $0.events(EventQuery()) }.map(\.event.id)
            // (One whose next id follows it: an event just before a run removed by pruning is covered by the
            // checkpoint instead.)
            let start = ids.count / 2
            let victim = try #require(ids[start...].indices.dropLast().first { ids[$0 + 1] == ids[$0] + 1 }.map { ids[$0] })
            try log.tamper("DELETE FROM events WHERE id = \(victim)")
            let tampered = try await PostgresCatalog.open(configuration: configuration, logger: LogAccess.quietLogger, pageSize: pageSize)
            let failure = try await tampered.verify().failure
            await tampered.close()
            #expect(failure?.description.contains("event \(victim) before it is gone") == true, "\(String(describing: failure))")
        }
    }
}
