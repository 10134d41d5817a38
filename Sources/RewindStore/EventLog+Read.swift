public import CoreMetrics
internal import GRDB
internal import GRDBSQLite
public import Logging
public import RewindCore
import Synchronization

/// Reading the log: pages, scans, single events, the head, streams and cursors; every read on the pool of read
/// connections, never waiting for the writer.
extension EventLog {

    /// Reads one page of events after a cursor, in id order, from a snapshot of the log.
    public func read(_ query: ReadQuery) async throws -> ReadPage {
        try await pool.read { db in try Self.read(query, db) }
    }

    static func read(_ query: ReadQuery, _ db: Database) throws -> ReadPage {
        let (sql, arguments) = selectSQL(query)
        var events: [Event] = []
        events.reserveCapacity(min(query.limit, 1024))
        try db.cachedStatement(sql: sql).forEachRow(arguments: arguments) { events.append(Event(row: $0)) }
        let bounds = try pageBounds(query, count: events.count, lastID: events.last?.id, db)
        return ReadPage(events: events, scannedThrough: bounds.scannedThrough, head: bounds.head)
    }

    /// Reads a page as `read` does, but hands each event's type and data to `visit` as raw UTF-8 straight from
    /// SQLite, valid only during the call, instead of building `Event`s: replays encode frames from it without a
    /// `String` per field. The summary also carries the pruning horizon of the streams read.
    public func scan<Output: Sendable>(
        _ query: ReadQuery,
        into output: Output,
        _ visit: @escaping @Sendable (inout Output, RawEvent) -> Void
    ) async throws -> (output: Output, page: PageSummary) {
        try await pool.read { db in
            var output = output
            let (sql, arguments) = Self.selectSQL(query, columns: "id, type, data")
            let statement = try db.cachedStatement(sql: sql)
            try statement.setArguments(arguments)
            let handle = statement.sqliteStatement
            defer { sqlite3_reset(handle) }
            var count = 0
            var firstID: Int64?
            var lastID: Int64?
            while true {
                let code = sqlite3_step(handle)
                if code == SQLITE_DONE { break }
                guard code == SQLITE_ROW else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: code), message: String(cString: sqlite3_errmsg(db.sqliteConnection)))
                }
                let id = sqlite3_column_int64(handle, 0)
                let type = UnsafeBufferPointer(start: sqlite3_column_text(handle, 1), count: Int(sqlite3_column_bytes(handle, 1)))
                let data = UnsafeBufferPointer(start: sqlite3_column_text(handle, 2), count: Int(sqlite3_column_bytes(handle, 2)))
                visit(&output, RawEvent(id: id, type: type, data: data))
                count += 1
                firstID = firstID ?? id
                lastID = id
            }
            let bounds = try Self.pageBounds(query, count: count, lastID: lastID, db)
            // Only subscriptions need the pruning horizon (to signal a gap), so only `scan` reads it.
            let prunedThrough = try Self.prunedThrough(query.filter, db)
            return (
                output,
                PageSummary(
                    count: count,
                    firstID: firstID,
                    scannedThrough: bounds.scannedThrough,
                    head: bounds.head,
                    prunedThrough: prunedThrough
                )
            )
        }
    }

    /// The statement of a page read, selecting `columns` (`scan` needs only three of an event's).
    private static func selectSQL(_ query: ReadQuery, columns: String = Event.sqlColumns) -> (String, StatementArguments) {
        var sql = "SELECT \(columns) FROM events WHERE id > ?"
        var arguments: StatementArguments = [query.after]
        let filter = query.filter
        if let streams = streamCondition(filter, column: "stream") {
            sql += " AND " + streams.sql
            _ = arguments.append(contentsOf: StatementArguments(streams.values))
        }
        if let through = query.through {
            sql += " AND id <= ?"
            _ = arguments.append(contentsOf: [through])
        }
        if !filter.types.isEmpty {
            sql += " AND type IN (" + Array(repeating: "?", count: filter.types.count).joined(separator: ", ") + ")"
            _ = arguments.append(contentsOf: StatementArguments(filter.types))
        }
        sql += " ORDER BY id LIMIT ?"
        _ = arguments.append(contentsOf: [query.limit])
        return (sql, arguments)
    }

    /// How far a page of `count` events looked, and the head in the same snapshot.
    private static func pageBounds(_ query: ReadQuery, count: Int, lastID: Int64?, _ db: Database) throws -> (scannedThrough: Int64, head: Int64) {
        let head = try Self.head(db)
        let scanned: Int64
        if count < query.limit || lastID == nil {
            scanned = max(query.after, min(head, query.through ?? head))
        } else {
            scanned = lastID!
        }
        return (scanned, head)
    }

    /// One event by id.
    public func event(id: Int64) async throws -> Event? {
        try await pool.read { db in
            try Self.read(ReadQuery(after: id - 1, filter: .everything, limit: 1, through: id), db).events.first
        }
    }

    /// The id of the last event ever committed (0 for an empty log); never goes back, also after deletions.
    public func head() async throws -> Int64 {
        try await pool.read { db in try Self.head(db) }
    }

    /// The highest id removed from the streams a filter covers.
    static func prunedThrough(_ filter: EventFilter, _ db: Database) throws -> Int64 {
        var sql = "SELECT max(pruned_through) FROM streams"
        var arguments: StatementArguments = []
        if let streams = streamCondition(filter, column: "name") {
            sql += " WHERE " + streams.sql
            arguments = StatementArguments(streams.values)
        }
        return try Int64.fetchOne(db.cachedStatement(sql: sql), arguments: arguments) ?? 0
    }

    /// The SQL condition on a stream-name column that a filter's names and patterns make, with the values for its
    /// placeholders, or nil for all streams. Stream names cannot hold GLOB's special characters, so a prefix
    /// pattern is a plain `prefix*`. Public for the admin queries, which filter by the same rule.
    public static func streamCondition(_ filter: EventFilter, column: String) -> (sql: String, values: [String])? {
        guard !filter.allStreams else { return nil }
        var alternatives: [String] = []
        if !filter.names.isEmpty {
            alternatives.append("\(column) IN (" + Array(repeating: "?", count: filter.names.count).joined(separator: ", ") + ")")
        }
        alternatives += filter.prefixes.map { _ in "\(column) GLOB ?" }
        return ("(" + alternatives.joined(separator: " OR ") + ")", filter.names + filter.prefixes.map { $0 + "*" })
    }

    static func head(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db.cachedStatement(sql: "SELECT seq FROM sqlite_sequence WHERE name = 'events'")) ?? 0
    }

    /// Every stream with its counters, by name.
    public func streams() async throws -> [StreamInfo] {
        try await pool.read { db in
            try db.cachedStatement(sql: "SELECT \(StreamInfo.sqlColumns) FROM streams WHERE deleted_at IS NULL ORDER BY name").rows(
                StreamInfo.init(row:)
            )
        }
    }

    /// One stream's counters, or whether it is unknown or deleted.
    public func status(ofStream name: String) async throws -> StreamStatus {
        try await pool.read { db in
            let statement = try db.cachedStatement(sql: "SELECT \(StreamInfo.sqlColumns), deleted_at FROM streams WHERE name = ?")
            let status = try statement.firstRow(arguments: [name]) { row -> StreamStatus in
                if let deletedAt = row.optionalInt64(6) { return .deleted(at: Timestamp(microseconds: deletedAt)) }
                return .live(StreamInfo(row: row))
            }
            return status ?? .unknown
        }
    }

    /// The cursor that starts a read at the first event committed at or after `time`: that event's id minus one,
    /// or the head if there is none. Binary search over ids, since commit times never decrease along ids.
    public func cursor(since time: Timestamp) async throws -> Int64 {
        try await pool.read { db in try Self.cursor(since: time, db) }
    }

    static func cursor(since time: Timestamp, _ db: Database) throws -> Int64 {
        let probe = try db.cachedStatement(sql: "SELECT id, time FROM events WHERE id >= ? ORDER BY id LIMIT 1")
        guard let last = try Row.fetchOne(db.cachedStatement(sql: "SELECT id, time FROM events ORDER BY id DESC LIMIT 1")),
            (last[1] as Int64) >= time.microseconds
        else { return try Self.head(db) }
        var low: Int64 = 0
        var high: Int64 = last[0]
        while low < high {
            let middle = low + (high - low) / 2
            guard let row = try Row.fetchOne(probe, arguments: [middle]) else { break }
            let (id, at): (Int64, Int64) = (row[0], row[1])
            // "The first event at or after `middle` is late enough" holds from some point on; find that point.
            if at >= time.microseconds { high = middle } else { low = id + 1 }
        }
        let first = try Row.fetchOne(probe, arguments: [low]).map { $0[0] as Int64 } ?? high
        return first - 1
    }
}
