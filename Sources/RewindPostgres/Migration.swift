internal import Foundation
internal import Logging
internal import PostgresNIO
internal import RewindStore

/// One schema step, from a numbered SQL file in `migrations/postgres/` embedded at build time (the generated
/// `Migration.embedded`). Statements are separated by `;`; a function body is quoted with `$$` (no tags).
struct Migration: Sendable {
    /// The file name without `.sql`, e.g. `0001_event_log`; recorded in `rewind_migrations` once applied.
    var name: String
    var sql: String
}

extension Migration {
    /// Any constant shared by every Rewind build: the key of the advisory lock migrations run under.
    static let lockKey: Int64 = 0x7265_7769_6E64_0001

    /// Applies the embedded migrations not yet recorded, in order, in one transaction under a transaction-level
    /// advisory lock: nodes starting at once on an empty database queue up on the lock, and each finds the work
    /// done by the one before it. A database holding a migration this build does not know was written by a newer
    /// Rewind; it is refused before anything is changed.
    static func migrate(_ connection: PostgresConnection, logger: Logger) async throws -> [String] {
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query("SELECT pg_advisory_xact_lock(\(lockKey))", logger: logger)
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS rewind_migrations (
                    name text COLLATE "C" PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """,
                logger: logger
            )
            var applied: Set<String> = []
            for try await name in try await connection.query("SELECT name FROM rewind_migrations", logger: logger).decode(String.self) {
                applied.insert(name)
            }
            let known = Set(embedded.map(\.name))
            guard applied.isSubset(of: known) else {
                throw StoreError.schemaTooNew(known: embedded.map(\.name))
            }
            var done: [String] = []
            for migration in embedded where !applied.contains(migration.name) {
                for statement in statements(migration.sql) {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                }
                try await connection.query("INSERT INTO rewind_migrations (name) VALUES (\(migration.name))", logger: logger)
                done.append(migration.name)
            }
            try await connection.query("COMMIT", logger: logger)
            return done
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// The statements of a migration file: split at `;` outside quotes, `$$` bodies and `--` comments, empty ones
    /// dropped.
    static func statements(_ sql: String) -> [String] {
        var out: [String] = []
        var current = ""
        var quote: Character?
        var comment = false
        var dollarQuoted = false
        var previous: Character = " "
        for character in sql {
            if dollarQuoted {
                current.append(character)
                if character == "$" && previous == "$" {
                    dollarQuoted = false
                    previous = " "
                    continue
                }
            } else if comment {
                if character == "\n" { comment = false }
                current.append(character)
            } else if let open = quote {
                current.append(character)
                if character == open { quote = nil }
            } else if character == "'" || character == "\"" {
                quote = character
                current.append(character)
            } else if character == "$" && previous == "$" {
                dollarQuoted = true
                current.append(character)
                previous = " "
                continue
            } else if character == "-" && previous == "-" {
                comment = true
                current.append(character)
            } else if character == ";" {
                out.append(current)
                current = ""
            } else {
                current.append(character)
            }
            previous = character
        }
        out.append(current)
        return out.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !isOnlyComments($0) }
    }

    private static func isOnlyComments(_ text: String) -> Bool {
        text.split(separator: "\n").allSatisfy { line in
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            return trimmed.isEmpty || trimmed.hasPrefix("--")
        }
    }
}
