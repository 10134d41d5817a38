internal import Foundation
internal import GRDB
import RewindCore

extension LogReader {
    /// Every stream with its counters, by name; deleted streams (tombstones) too when asked.
    public func streams(includeDeleted: Bool = false) throws -> [StreamSummary] {
        try read { db in try Self.streams(includeDeleted: includeDeleted, db) }
    }

    static func streams(includeDeleted: Bool, _ db: Database) throws -> [StreamSummary] {
        let statement = try db.makeStatement(
            sql: """
                SELECT s.name, s.count, s.first_id, s.last_id, s.last_time, s.bytes, s.pruned_through, s.deleted_at,
                    (SELECT time FROM events WHERE id = s.first_id)
                FROM streams AS s \(includeDeleted ? "" : "WHERE s.deleted_at IS NULL") ORDER BY s.name
                """
        )
        return try statement.rows { row in
            let count = row.int64(1)
            return StreamSummary(
                name: row.text(0),
                count: count,
                firstID: count > 0 ? row.int64(2) : nil,
                lastID: row.int64(3),
                firstTime: count > 0 ? row.optionalInt64(8).map(Timestamp.init(microseconds:)) : nil,
                lastTime: count > 0 ? Timestamp(microseconds: row.int64(4)) : nil,
                bytes: row.int64(5),
                prunedThrough: row.int64(6),
                deletedAt: row.optionalInt64(7).map(Timestamp.init(microseconds:))
            )
        }
    }

    /// Counts, sizes, the id and time range and the retention in force. Counts come from the per-stream rows the
    /// writer keeps, so this costs nothing however long the log is.
    public func stats() throws -> LogStats {
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int64) ?? 0
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? 0
        return try read { db in
            let streams = try Self.streams(includeDeleted: true, db)
            let first = try Row.fetchOne(db, sql: "SELECT id, time FROM events ORDER BY id LIMIT 1")
            let last = try Row.fetchOne(db, sql: "SELECT id, time FROM events ORDER BY id DESC LIMIT 1")
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
            let checkpoints = tables.contains("chain_checkpoints") ? try Int64.fetchOne(db, sql: "SELECT count(*) FROM chain_checkpoints") ?? 0 : 0
            let retention =
                tables.contains("log_settings")
                ? try db.makeStatement(sql: "SELECT value FROM log_settings WHERE key = 'retention'").firstRow { $0.text(0) } : nil
            let freePages = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
            let pageSize = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 0
            return LogStats(
                events: streams.reduce(0) { $0 + $1.count },
                bytes: streams.reduce(0) { $0 + $1.bytes },
                firstID: first.map { $0[0] },
                lastID: last.map { $0[0] },
                firstTime: first.map { Timestamp(microseconds: $0[1]) },
                lastTime: last.map { Timestamp(microseconds: $0[1]) },
                head: try Self.head(db),
                databaseBytes: size,
                walBytes: wal,
                freeBytes: freePages * pageSize,
                checkpoints: checkpoints,
                retention: retention,
                streams: streams
            )
        }
    }
}
