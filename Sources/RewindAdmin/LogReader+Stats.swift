internal import Foundation
internal import GRDB
public import RewindCore
internal import RewindStore

/// A stream's counters as `rewind streams` and `rewind stats` list them.
public struct StreamSummary: Sendable, Equatable {
    public var name: String
    public var count: Int64
    public var firstID: Int64?
    public var lastID: Int64
    public var firstTime: Timestamp?
    public var lastTime: Timestamp?
    public var bytes: Int64
    /// The highest id removed from it by retention or deletion (0 if none).
    public var prunedThrough: Int64
    public var deletedAt: Timestamp?

    public static let columns = ["name", "count", "first_id", "last_id", "first_time", "last_time", "bytes", "pruned_through", "deleted_at"]

    public var cells: [Cell] {
        [
            .text(name), .integer(count), firstID.map(Cell.integer) ?? .null, .integer(lastID), firstTime.map { .text($0.description) } ?? .null,
            lastTime.map { .text($0.description) } ?? .null, .integer(bytes), .integer(prunedThrough),
            deletedAt.map { .text($0.description) } ?? .null,
        ]
    }
}

/// What `rewind stats` reports about a log file.
public struct LogStats: Sendable, Equatable {
    public var events: Int64
    /// Bytes of event data (UTF-8).
    public var bytes: Int64
    public var firstID: Int64?
    public var lastID: Int64?
    public var firstTime: Timestamp?
    public var lastTime: Timestamp?
    /// The last id ever given out; above `lastID` when the newest events were removed.
    public var head: Int64
    public var databaseBytes: Int64
    public var walBytes: Int64
    /// Pages SQLite holds free for reuse (given back to the file system by incremental vacuum after pruning).
    public var freePages: Int64
    public var pageSize: Int64
    public var checkpoints: Int64
    /// The retention policy last applied by the server or `rewind prune`, if any was.
    public var retention: String?
    public var streams: [StreamSummary]

    /// The summary as name/value rows, then the streams as their own table.
    public var summary: OutputTable {
        func time(_ value: Timestamp?) -> Cell { value.map { .text($0.description) } ?? .null }
        let live = streams.filter { $0.deletedAt == nil }
        let rows: [[Cell]] = [
            [.text("events"), .integer(events)],
            [.text("bytes"), .integer(bytes)],
            [.text("streams"), .integer(Int64(live.count))],
            [.text("deleted_streams"), .integer(Int64(streams.count - live.count))],
            [.text("first_id"), firstID.map(Cell.integer) ?? .null],
            [.text("first_time"), time(firstTime)],
            [.text("last_id"), lastID.map(Cell.integer) ?? .null],
            [.text("last_time"), time(lastTime)],
            [.text("head"), .integer(head)],
            [.text("database_bytes"), .integer(databaseBytes)],
            [.text("wal_bytes"), .integer(walBytes)],
            [.text("free_bytes"), .integer(freePages * pageSize)],
            [.text("checkpoints"), .integer(checkpoints)],
            [.text("retention"), .text(retention ?? "none recorded")],
        ]
        return OutputTable(columns: ["field", "value"], rows: rows)
    }

    /// The whole report as one JSON object: the summary's fields plus `streams`, an array.
    public var json: String {
        var json = JSONWriter()
        json.beginObject()
        for row in summary.rows {
            json.key(row[0].text)
            switch row[1] {
            case .integer(let value): json.int(value)
            case .text(let value): json.string(value)
            case .json(let value): json.raw(value)
            case .null: json.null()
            }
        }
        json.key("streams")
        let streamsJSON = OutputTable(columns: StreamSummary.columns, rows: streams.map(\.cells)).render(.json)
        json.raw(String(streamsJSON.dropLast()))
        json.endObject()
        return String(decoding: json.bytes, as: UTF8.self)
    }
}

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
                freePages: try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0,
                pageSize: try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 0,
                checkpoints: checkpoints,
                retention: retention,
                streams: streams
            )
        }
    }
}
