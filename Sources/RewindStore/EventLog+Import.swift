internal import Foundation
internal import GRDB
public import RewindCore

/// One line of an export, as `import` hands it to the log.
public enum ImportRecord: Sendable {
    /// An event with the id, time and hash it had.
    case event(Event, hash: [UInt8])
    /// A run of removed events ended at `id`, whose hash was this.
    case checkpoint(id: Int64, hash: [UInt8])
    /// A stream's deletion time (tombstone) and pruning horizon.
    case streamState(name: String, deletedAt: Timestamp?, prunedThrough: Int64)
    /// The highest id ever given out, so new events never reuse an id the exported log had used.
    case head(Int64)
}

extension EventLog {
    /// True when no event was ever committed to this log.
    public func isEmpty() async throws -> Bool {
        try await pool.read { db in
            try Self.head(db) == 0 && (try Int.fetchOne(db, sql: "SELECT count(*) FROM chain_checkpoints") ?? 0) == 0
        }
    }

    /// Writes exported records as they were, ids, times and hashes included, in one transaction. The caller
    /// checks the chain; records must come in id order, and after every event already in the log. Text is bound
    /// with its length (`SQLiteRow.textArgument`), so data holding NUL is written whole and its hash still matches.
    public func importRecords(_ records: [ImportRecord]) async throws {
        try await queuedWrite { db in
            let insert = try db.cachedStatement(
                sql: """
                    INSERT INTO events (id, stream, type, data, json, time, key, hash)
                    VALUES (?, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), ?, ?, CAST(? AS TEXT), ?)
                    """
            )
            let upsert = try db.cachedStatement(
                sql: """
                    INSERT INTO streams (name, count, first_id, last_id, last_time, bytes) VALUES (CAST(? AS TEXT), 1, ?, ?, ?, ?)
                    ON CONFLICT (name) DO UPDATE SET count = count + 1, last_id = excluded.last_id,
                        last_time = excluded.last_time, bytes = bytes + excluded.bytes,
                        first_id = CASE WHEN count = 0 THEN excluded.first_id ELSE first_id END
                    """
            )
            for record in records {
                switch record {
                case .event(let event, let hash):
                    try insert.execute(arguments: [
                        event.id, SQLiteRow.textArgument(event.stream), SQLiteRow.textArgument(event.type), SQLiteRow.textArgument(event.data),
                        event.isJSON, event.time.microseconds, SQLiteRow.textArgument(event.key), Data(hash),
                    ])
                    try upsert.execute(arguments: [
                        SQLiteRow.textArgument(event.stream), event.id, event.id, event.time.microseconds, event.data.utf8.count,
                    ])
                case .checkpoint(let id, let hash):
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO chain_checkpoints (id, hash) VALUES (?, ?)",
                        arguments: [id, Data(hash)]
                    )
                case .streamState(let name, let deletedAt, let prunedThrough):
                    try db.execute(
                        sql: """
                            INSERT INTO streams (name, count, first_id, last_id, last_time, bytes, deleted_at, pruned_through)
                            VALUES (CAST(? AS TEXT), 0, 0, ?, 0, 0, ?, ?)
                            ON CONFLICT (name) DO UPDATE SET deleted_at = excluded.deleted_at, pruned_through = excluded.pruned_through
                            """,
                        arguments: [SQLiteRow.textArgument(name), prunedThrough, deletedAt?.microseconds, prunedThrough]
                    )
                case .head(let head):
                    if try Self.head(db) == 0 {
                        try db.execute(sql: "INSERT INTO sqlite_sequence (name, seq) VALUES ('events', ?)", arguments: [head])
                    } else {
                        try db.execute(sql: "UPDATE sqlite_sequence SET seq = max(seq, ?) WHERE name = 'events'", arguments: [head])
                    }
                }
            }
        }
    }
}
