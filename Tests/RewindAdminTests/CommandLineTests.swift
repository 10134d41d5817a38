import Foundation
import RewindAdmin
import RewindCore
import RewindStore
import RewindTestSupport
import Testing

/// The built binary, end to end: arguments, environment, output and exit codes.
@Suite("rewind commands, end to end")
struct CommandLineTests {
    @Test func queryInEveryFormatWithCombinedFilters() async throws {
        let directory = try TemporaryDirectory()
        let path = try await knownLog(in: directory)
        let filters = ["--stream", "orders.*", "--type", "order.created", "--where", "user.id=42", "--since", "2026-11-21T10:00:30Z"]
        let json = try rewind(["query", "--db", path, "--format", "json"] + filters)
        #expect(json.status == 0, "\(json.stderr)")
        #expect(
            json.stdout
                == #"[{"id":6,"stream":"orders.eu","type":"order.created","data":{"user":{"id":42},"total":12},"time":"2026-11-21T10:05:00.000000Z","key":"k-6"}]"#
                + "\n"
        )
        let ndjson = try rewind(["query", "--db", path, "--format", "ndjson", "--stream", "audit", "--contains", "line"])
        #expect(
            ndjson.stdout
                == #"{"id":5,"stream":"audit","type":"message","data":"line one\nline two, with \"quotes\"","time":"2026-11-21T10:04:00.000000Z"}"#
                + "\n"
        )
        let csv = try rewind(["query", "--db", path, "--format", "csv", "--type", "order.paid", "--where", "status=paid", "--reverse"])
        #expect(
            csv.stdout
                == "id,stream,type,data,time,key\r\n"
                + "7,orders.us,order.paid,\"{\"\"user\"\":{\"\"id\"\":7},\"\"status\"\":\"\"paid\"\"}\",2026-11-21T10:06:00.000000Z,\r\n"
                + "4,orders.eu,order.paid,\"{\"\"user\"\":{\"\"id\"\":42},\"\"status\"\":\"\"paid\"\"}\",2026-11-21T10:03:00.000000Z,\r\n"
        )
        let table = try rewind(["query", "--db", path, "--format", "table", "--after", "6", "--before", "9", "--limit", "0"])
        #expect(
            table.stdout == """
                ID  STREAM     TYPE        TIME                         KEY  DATA
                7   orders.us  order.paid  2026-11-21T10:06:00.000000Z       {"user":{"id":7},"status":"paid"}
                8   chat       message     2026-11-21T10:07:00.000000Z       timeout while waiting

                """
        )
        // Not a terminal and no --format: JSON, as SPEC §4 asks; --db from REWIND_DB.
        let piped = try rewind(["query", "--limit", "1"], environment: ["REWIND_DB": path])
        #expect(piped.status == 0)
        #expect(piped.stdout.hasPrefix(#"[{"id":1,"stream":"orders.eu""#))
        // A relative --until: everything in the known log is older than a minute ago.
        let relative = try rewind(["query", "--db", path, "--until", "1m", "--format", "ndjson", "--limit", "0"])
        #expect(relative.stdout.split(separator: "\n").count == 8)
    }

    @Test(arguments: Backend.all) func streamsStatsAndPruneCommands(backend: Backend) async throws {
        try await withKnownLog(backend) { log in try await checkStreamsStatsAndPrune(log.db) }
    }

    func checkStreamsStatsAndPrune(_ path: String) async throws {
        let streams = try rewind(["streams", "--db", path, "--format", "csv"])
        #expect(
            streams.stdout
                == "name,count,first_id,last_id,first_time,last_time,bytes,pruned_through,deleted_at\r\n"
                + "audit,2,3,5,2026-11-21T10:02:00.000000Z,2026-11-21T10:04:00.000000Z,40,0,\r\n"
                + "chat,1,8,8,2026-11-21T10:07:00.000000Z,2026-11-21T10:07:00.000000Z,21,0,\r\n"
                + "orders.eu,3,1,6,2026-11-21T10:00:00.000000Z,2026-11-21T10:05:00.000000Z,93,0,\r\n"
                + "orders.us,2,2,7,2026-11-21T10:01:00.000000Z,2026-11-21T10:06:00.000000Z,60,0,\r\n"
        )
        let dry = try rewind(["prune", "--db", path, "--retention-max-events", "1", "--dry-run", "--format", "ndjson"])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(
            dry.stdout
                == #"{"stream":"audit","would_remove":1,"through_id":3}"# + "\n" + #"{"stream":"orders.eu","would_remove":2,"through_id":4}"# + "\n"
                + #"{"stream":"orders.us","would_remove":1,"through_id":2}"# + "\n"
        )
        let stats = try rewind(["stats", "--db", path, "--format", "json"])
        let before = try #require(try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any])
        #expect(before["events"] as? Int == 8)
        let pruned = try rewind(["prune", "--db", path, "--stream-retention", "orders.*:max-events=1", "--format", "table"])
        #expect(pruned.status == 0, "\(pruned.stderr)")
        #expect(pruned.stdout.contains("removed 3 events"))
        let after = try rewind(["stats", "--db", path, "--format", "json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(after.stdout.utf8)) as? [String: Any])
        #expect(object["events"] as? Int == 5)
        #expect(object["retention"] as? String == "unlimited; orders.*: max-events=1")
        #expect(object["checkpoints"] as? Int == 2, "one per run of removed events: through 2 and through 4")
        #expect(object["head"] as? Int == 8)
        let verify = try rewind(["verify", "--db", path])
        #expect(verify.status == 0, "\(verify.stderr)")
        #expect(verify.stdout.hasPrefix("ok: 5 events, 2 checkpoints"))
        let table = try rewind(["stats", "--db", path, "--format", "table"])
        #expect(table.stdout.contains("wal_bytes"))
        #expect(table.stdout.contains("orders.us"))
    }

    @Test func exportImportBackupThroughTheBinary() async throws {
        let directory = try TemporaryDirectory()
        let path = try await knownLog(in: directory)
        let exported = try rewind(["export", "--db", path])
        #expect(exported.status == 0)
        #expect(exported.stdout.split(separator: "\n").count == 9)
        let copy = directory.path("copy.sqlite")
        let imported = try rewind(["import", "--db", copy], stdin: exported.stdout)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(imported.stderr.contains("imported 8 events"))
        #expect(try rewind(["verify", "--db", copy]).status == 0)
        let original = try rewind(["query", "--db", path, "--limit", "0", "--format", "ndjson"])
        #expect(try rewind(["query", "--db", copy, "--limit", "0", "--format", "ndjson"]).stdout == original.stdout)
        let again = try rewind(["import", "--db", copy], stdin: exported.stdout)
        #expect(again.status == 1)
        #expect(again.stderr == "rewind: \(copy) is not empty; import only into a new log\n")
        let backup = directory.path("backup.sqlite")
        #expect(try rewind(["backup", "--db", path, backup]).status == 0)
        #expect(try rewind(["query", "--db", backup, "--limit", "0", "--format", "ndjson"]).stdout == original.stdout)
        #expect(try rewind(["backup", "--db", path, backup]).status == 1, "never overwrites")
    }

    @Test func exitCodesAndHelp() async throws {
        let directory = try TemporaryDirectory()
        let missing = try rewind(["query", "--db", directory.path("none.sqlite")])
        #expect(missing.status == 1)
        #expect(missing.stderr == "rewind: no database at \(directory.path("none.sqlite"))\n")
        let usage = try rewind(["query", "--limit", "-1"])
        #expect(usage.status == 2, "\(usage.stderr)")
        let badWhere = try rewind(["query", "--where", "nothing"])
        #expect(badWhere.status == 2)
        #expect(badWhere.stderr.contains("--where 'nothing'"))
        let unknown = try rewind(["query", "--frobnicate"])
        #expect(unknown.status == 2)
        let unreachable = try rewind(["publish", "s", "x", "--server", "http://127.0.0.1:9"])
        #expect(unreachable.status == 1)
        #expect(unreachable.stderr.hasPrefix("rewind: cannot reach http://127.0.0.1:9"))
        #expect(unreachable.stderr.split(separator: "\n").count == 1)
        for command in ["query", "streams", "stats", "tail", "publish", "verify", "prune", "backup", "export", "import"] {
            let help = try rewind([command, "--help"])
            #expect(help.status == 0)
            #expect(help.stdout.contains("Examples:") && help.stdout.contains("rewind \(command)"), "\(command) --help has examples")
        }
    }

    /// Every command's help at 80 columns: no line wider, no word left alone on a line (the mark of text wrapped by
    /// hand and then again by ArgumentParser), no hand-wrapped paragraph, no option showing its default twice, and
    /// examples in every one.
    @Test(arguments: [
        [], ["serve"], ["publish"], ["tail"], ["query"], ["streams"], ["stats"], ["verify"], ["prune"], ["backup"], ["export"],
        ["import"], ["token"], ["bench"], ["bench", "ingest"], ["bench", "fanout"], ["bench", "replay"], ["bench", "idle"],
    ])
    func helpReadsCleanlyAt80Columns(command: [String]) throws {
        let name = (["rewind"] + command).joined(separator: " ")
        // A token from the environment must never show up as an option's default.
        let help = try rewind(command + ["--help"], environment: ["COLUMNS": "80", "REWIND_TOKEN": "env-token-1234"])
        #expect(help.status == 0)
        #expect(!help.stdout.contains("env-token-1234"), "\(name) --help shows the token")
        let lines = help.stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for (index, line) in lines.enumerated() {
            #expect(line.count <= 80, "\(name) --help: a line of \(line.count) columns: \(line)")
            let text = line.trimmingCharacters(in: .whitespaces)
            if !text.isEmpty, !text.contains(" "), !text.hasSuffix(":"), !text.hasPrefix("-"), text.count <= 24 {
                Issue.record("\(name) --help: '\(text)' alone on a line")
            }
            // Paragraph text starts in column 0; a break where the next word would still have fitted was made by hand.
            let next = index + 1 < lines.count ? lines[index + 1] : ""
            if !line.isEmpty, !line.hasPrefix(" "), !line.hasSuffix(":"), !next.isEmpty, !next.hasPrefix(" "),
                !["USAGE", "OPTIONS", "ARGUMENTS", "SUBCOMMANDS"].contains(where: { next.hasPrefix($0) }),
                let word = next.split(separator: " ").first, line.count + 1 + word.count <= 78
            {
                Issue.record("\(name) --help: a paragraph wrapped by hand after '\(line)'")
            }
        }
        // One entry per option: its first line and the lines indented under its help.
        var entries: [String] = []
        for line in lines {
            if line.hasPrefix("  "), !line.hasPrefix("   "), !line.hasPrefix("  rewind") {
                entries.append(line)
            } else if line.hasPrefix(String(repeating: " ", count: 26)), !entries.isEmpty {
                entries[entries.count - 1] += " " + line.trimmingCharacters(in: .whitespaces)
            }
        }
        for entry in entries {
            let defaults = entry.lowercased().components(separatedBy: "default:").count - 1
            #expect(defaults <= 1, "\(name) --help: a default shown \(defaults) times: \(entry)")
        }
        #expect(help.stdout.contains("\nExamples:\n  \(name)"), "\(name) --help has no examples of itself")
    }
}
