internal import GRDB
import RewindCore

extension StoredEvent {
    /// The columns `init(row:)` reads: the event's, then its hash.
    static let sqlColumns = Event.sqlColumns + ", hash"

    /// The event a row selected with `StoredEvent.sqlColumns` (or the event's columns and NULL) holds.
    init(row: SQLiteRow) {
        self.init(event: Event(row: row), hash: row.blob(7))
    }
}

extension LogReader {
    /// The events a query selects, in id order (newest first when reversed).
    ///
    /// A limited query over several streams reads each stream's first (or last) `limit` matches through the
    /// `(stream, id)` index and merges them, which is exact (the overall first `limit` are among them) and costs
    /// at most streams × limit rows; one statement would either sort every match or walk the whole log.
    public func events(_ query: EventQuery) throws -> [StoredEvent] {
        try read { db in
            let hasChain = try hasChain(db)
            guard let limit = query.limit, let names = try Self.perStreamNames(query, db) else {
                return try Self.fetch(query, hasChain: hasChain, db)
            }
            var merged: [StoredEvent] = []
            for name in names {
                var one = query
                one.streams = [name]
                merged += try Self.fetch(one, hasChain: hasChain, db)
            }
            merged.sort { query.reverse ? $0.event.id > $1.event.id : $0.event.id < $1.event.id }
            return Array(merged.prefix(limit))
        }
    }

    /// The plan SQLite picks for a query, as `EXPLAIN QUERY PLAN` prints it (one line per step); for a merge of
    /// per-stream reads, the plan of each read after a line that says so.
    public func plan(_ query: EventQuery) throws -> [String] {
        try read { db in
            var query = query
            var lines: [String] = []
            if query.limit != nil, let names = try Self.perStreamNames(query, db) {
                lines.append("MERGE OF \(names.count) PER-STREAM READS, EACH:")
                query.streams = names.prefix(1).map { $0 }
            }
            let (sql, arguments) = try Self.sql(query, hasChain: try hasChain(db), db)
            return lines + (try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN " + sql, arguments: arguments).map { $0["detail"] as String })
        }
    }

    private static func fetch(_ query: EventQuery, hasChain: Bool, _ db: Database) throws -> [StoredEvent] {
        let (sql, arguments) = try Self.sql(query, hasChain: hasChain, db)
        return try db.makeStatement(sql: sql).rows(arguments: arguments, StoredEvent.init(row:))
    }

    /// The streams a query covers when they are several (names, or patterns matched against the stream list)
    /// and few enough to read one by one; nil for one stream, every stream, or more than 1 000.
    private static func perStreamNames(_ query: EventQuery, _ db: Database) throws -> [String]? {
        guard !query.streams.isEmpty, !query.streams.contains("*") else { return nil }
        let filter: EventFilter
        do {
            filter = try EventFilter(patterns: query.streams)
        } catch {
            throw AdminError("--stream: \(error)")
        }
        if filter.prefixes.isEmpty, filter.names.count < 2 { return nil }
        var names = Set(filter.names)
        for prefix in filter.prefixes {
            let statement = try db.makeStatement(sql: "SELECT name FROM streams WHERE name GLOB ? AND count > 0")
            names.formUnion(try statement.rows(arguments: [prefix + "*"]) { $0.text(0) })
        }
        guard names.count <= 1_000 else { return nil }
        return names.sorted()
    }

    /// The statement of a query. Times become id bounds (commit times never decrease along ids), so every
    /// query walks the primary key or the `(stream, id)` index, forwards or backwards, and stops at its limit.
    static func sql(_ query: EventQuery, hasChain: Bool, _ db: Database) throws -> (String, StatementArguments) {
        var conditions: [String] = []
        var arguments: StatementArguments = []
        var low = query.after ?? 0
        var high = query.before.map { $0 - 1 } ?? Int64.max
        if let since = query.since { low = max(low, try lastID(before: since, db)) }
        if let until = query.until { high = min(high, try lastID(before: until, db)) }
        if low > 0 {
            conditions.append("id > ?")
            _ = arguments.append(contentsOf: [low])
        }
        if high < Int64.max {
            conditions.append("id <= ?")
            _ = arguments.append(contentsOf: [high])
        }
        let patterns = query.streams.filter { $0 != "*" }
        if !patterns.isEmpty, patterns.count == query.streams.count {
            let filter: EventFilter
            do {
                filter = try EventFilter(patterns: patterns)
            } catch {
                throw AdminError("--stream: \(error)")
            }
            if let streams = EventLog.streamCondition(filter, column: "stream") {
                conditions.append(streams.sql)
                _ = arguments.append(contentsOf: StatementArguments(streams.values))
            }
        }
        if !query.types.isEmpty {
            conditions.append("type IN (" + Array(repeating: "?", count: query.types.count).joined(separator: ", ") + ")")
            _ = arguments.append(contentsOf: StatementArguments(query.types))
        }
        if let text = query.text {
            conditions.append("instr(data, ?) > 0")
            _ = arguments.append(contentsOf: [text])
        }
        for field in query.fields {
            // json_extract fails on text that is not JSON; such data simply does not match.
            let extracted = "(CASE WHEN json_valid(data) THEN json_extract(data, ?) END)"
            let typed = "(CASE WHEN json_valid(data) THEN json_type(data, ?) END)"
            switch field.value {
            case .integer(let value):
                conditions.append("\(extracted) = ?")
                _ = arguments.append(contentsOf: [field.path, value])
            case .real(let value):
                conditions.append("\(extracted) = ?")
                _ = arguments.append(contentsOf: [field.path, value])
            case .text(let value):
                conditions.append("\(typed) = 'text' AND \(extracted) = ?")
                _ = arguments.append(contentsOf: [field.path, field.path, value])
            case .boolean(let value):
                conditions.append("\(typed) = ?")
                _ = arguments.append(contentsOf: [field.path, value ? "true" : "false"])
            case .null:
                conditions.append("\(typed) = 'null'")
                _ = arguments.append(contentsOf: [field.path])
            }
        }
        var sql = "SELECT \(Event.sqlColumns), \(hasChain ? "hash" : "NULL") FROM events"
        if !conditions.isEmpty { sql += " WHERE " + conditions.joined(separator: " AND ") }
        sql += query.reverse ? " ORDER BY id DESC" : " ORDER BY id"
        if let limit = query.limit {
            sql += " LIMIT ?"
            _ = arguments.append(contentsOf: [limit])
        }
        return (sql, arguments)
    }
}
