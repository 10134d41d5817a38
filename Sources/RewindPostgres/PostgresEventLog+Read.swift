import CoreMetrics
internal import Foundation
import Logging
internal import NIOCore
internal import PostgresNIO
public import RewindCore
public import RewindStore
import ServiceLifecycle
import Synchronization

extension PostgresEventLog {

    /// Reads one page of events after a cursor, in id order, from one snapshot of the log.
    public func read(_ query: ReadQuery) async throws -> ReadPage {
        try await withConnection("a read") { connection, logger in
            let rows = try await connection.query(Self.pageQuery(query), logger: logger)
            var events: [Event] = []
            events.reserveCapacity(min(query.limit, 1024))
            var head: Int64 = 0
            for try await row in rows {
                var cells = row.makeIterator()
                head = try cells.next()!.decode(Int64.self)
                _ = cells.next()
                let id = cells.next()!
                guard id.bytes != nil else { continue }
                let stream = try cells.next()!.decode(String.self)
                let type = try cells.next()!.decode(String.self)
                let data = cells.next()!.bytes.map { String(decoding: $0.readableBytesView, as: UTF8.self) } ?? ""
                let isJSON = try cells.next()!.decode(Bool.self)
                let time = try cells.next()!.decode(Int64.self)
                let key = try cells.next()!.decode(String?.self)
                events.append(
                    Event(
                        id: try id.decode(Int64.self),
                        stream: stream,
                        type: type,
                        data: data,
                        isJSON: isJSON,
                        time: Timestamp(microseconds: time),
                        key: key
                    )
                )
            }
            let scanned = Self.scannedThrough(query, count: events.count, lastID: events.last?.id, head: head)
            return ReadPage(events: events, scannedThrough: scanned, head: head)
        }
    }

    /// Reads a page as `read` does, but hands each event's type and data to `visit` as raw UTF-8 from the row's
    /// bytes, valid only during the call, instead of building `Event`s. The summary also carries the pruning
    /// horizon of the streams read, from the same snapshot.
    ///
    /// The page comes back as one row holding three arrays, the events' ids, types and data (see
    /// `packedPageQuery`): decoding a row per event through PostgresNIO (its row iterator, a cell per column, a
    /// buffer per cell) cost more than PostgreSQL's reading the page, and was the top of a replay's profile; walking
    /// the arrays' binary form costs next to nothing.
    public func scan<Output: Sendable>(
        _ query: ReadQuery,
        into output: Output,
        _ visit: @escaping @Sendable (inout Output, RawEvent) -> Void
    ) async throws -> (output: Output, page: PageSummary) {
        try await withConnection("a read") { connection, logger in
            var output = output
            let (head, prunedThrough, count, firstID, lastID, ids, types, datas) = try await Self.single(
                connection.query(Self.packedPageQuery(query), logger: logger),
                (Int64, Int64, Int64, Int64?, Int64?, ByteBuffer?, ByteBuffer?, ByteBuffer?).self
            )
            if let ids, let types, let datas, count > 0 {
                try Self.unpack(ids: ids, types: types, datas: datas, expecting: Int(count)) { event in visit(&output, event) }
            }
            let events = Int(count)
            let scanned = Self.scannedThrough(query, count: events, lastID: lastID, head: head)
            return (output, PageSummary(count: events, firstID: firstID, scannedThrough: scanned, head: head, prunedThrough: prunedThrough))
        }
    }

    /// Walks a page's three arrays in PostgreSQL's binary form (`BinaryArrayReader`) in step: the ids (`int8`), the
    /// types (`text`, UTF-8) and the data (`bytea`). Throws unless each holds exactly `count` elements, none NULL,
    /// and the ids ascend.
    static func unpack(ids: ByteBuffer, types: ByteBuffer, datas: ByteBuffer, expecting count: Int, _ visit: (RawEvent) -> Void) throws {
        let complete: Bool = ids.withUnsafeReadableBytes { idBytes in
            types.withUnsafeReadableBytes { typeBytes in
                datas.withUnsafeReadableBytes { dataBytes in
                    var id = BinaryArrayReader(idBytes.bindMemory(to: UInt8.self))
                    var type = BinaryArrayReader(typeBytes.bindMemory(to: UInt8.self))
                    var data = BinaryArrayReader(dataBytes.bindMemory(to: UInt8.self))
                    guard id.start(count: count), type.start(count: count), data.start(count: count) else { return false }
                    var previous = Int64.min
                    for _ in 0..<count {
                        guard let idElement = id.next(), idElement.count == 8, let typeElement = type.next(), let dataElement = data.next()
                        else { return false }
                        let eventID = Int64(bitPattern: BinaryArrayReader.integer(idElement))
                        guard eventID > previous else { return false }
                        previous = eventID
                        visit(RawEvent(id: eventID, type: typeElement, data: dataElement))
                    }
                    return id.atEnd && type.atEnd && data.atEnd
                }
            }
        }
        guard complete else {
            throw StoreError.unavailable("a page read from PostgreSQL was malformed: expected \(count) events in id order")
        }
    }

    /// How far a page of `count` events looked, as `EventLog` reports it.
    private static func scannedThrough(_ query: ReadQuery, count: Int, lastID: Int64?, head: Int64) -> Int64 {
        if count < query.limit || lastID == nil {
            return max(query.after, min(head, query.through ?? head))
        }
        return lastID!
    }

    /// A page read as one statement, so the head and the events come from one snapshot: one row per event after the
    /// head row's columns, or a single row of the head with NULL events.
    static func pageQuery(_ query: ReadQuery) -> PostgresQuery {
        var builder = QueryBuilder()
        let (conditions, limit) = pageConditions(query, &builder)
        let columns = ["id", "stream", "type", "data", "json", "time", "key"]
        builder.sql = """
            SELECT h.head, 0::int8, \(columns.map { "e." + $0 }.joined(separator: ", "))
            FROM log_head AS h LEFT JOIN LATERAL (
                SELECT \(columns.joined(separator: ", ")) FROM events
                WHERE \(conditions)
                ORDER BY id LIMIT \(limit)) AS e ON true
            ORDER BY e.id
            """
        return builder.query
    }

    /// The conditions selecting a page's events (after the cursor, through the head and `through`, the filter's
    /// streams and types) and the bound limit, for a statement reading `log_head AS h`.
    private static func pageConditions(_ query: ReadQuery, _ builder: inout QueryBuilder) -> (conditions: String, limit: String) {
        var conditions = ["id > \(builder.bind(query.after))", "id <= h.head"]
        let filter = query.filter
        if let streams = streamCondition(filter, column: "stream", &builder) { conditions.append(streams) }
        if let through = query.through { conditions.append("id <= \(builder.bind(through))") }
        if !filter.types.isEmpty { conditions.append("type = ANY(\(builder.bind(filter.types)))") }
        return (conditions.joined(separator: " AND "), builder.bind(query.limit))
    }

    /// A page for `scan`, as one row from one snapshot: the head, the pruning horizon of the streams read, how many
    /// events the page holds, its first and last id, and the events' ids, types and data as three arrays in id
    /// order (NULL for an empty page). The events are the ones `pageQuery` selects, read the same way (the index in
    /// id order, stopped by the limit). `array_agg` costs PostgreSQL less than half of concatenating the events
    /// into one `bytea` (0.6 against 1.4 ms for a page of 1 000 in `EXPLAIN ANALYZE`), and the arrays' binary form
    /// is as easy to walk. The aggregates take the rows in the order the sorted subquery hands them over, which is
    /// what PostgreSQL does for a plain aggregate over it; an `ORDER BY` in each aggregate would sort the page three
    /// more times (1.5 ms). `unpack` checks that the ids ascend, so a plan that ever reordered them fails the read
    /// instead of sending events out of order.
    static func packedPageQuery(_ query: ReadQuery) -> PostgresQuery {
        var builder = QueryBuilder()
        let (conditions, limit) = pageConditions(query, &builder)
        var where_ = ""
        if let streams = streamCondition(query.filter, column: "name", &builder) { where_ = " WHERE " + streams }
        builder.sql = """
            SELECT h.head, (SELECT coalesce(max(pruned_through), 0) FROM streams\(where_)), e.count, e.first_id, e.last_id,
                e.ids, e.types, e.datas
            FROM log_head AS h CROSS JOIN LATERAL (
                SELECT count(*) AS count, min(p.id) AS first_id, max(p.id) AS last_id,
                    array_agg(p.id) AS ids, array_agg(p.type) AS types, array_agg(p.data) AS datas
                FROM (
                    SELECT id, type, data FROM events
                    WHERE \(conditions)
                    ORDER BY id LIMIT \(limit)) AS p) AS e
            """
        return builder.query
    }

    /// The SQL condition on a stream-name column that a filter's names and patterns make, or nil for all
    /// streams. A prefix is a `LIKE` pattern with its `_` escaped (stream names cannot hold `%` or `\`).
    static func streamCondition(_ filter: EventFilter, column: String, _ builder: inout QueryBuilder) -> String? {
        guard !filter.allStreams else { return nil }
        // One stream (every SSE subscription to a stream): an equality, so the (stream, id) index hands rows over in
        // id order and the LIMIT stops the scan. With `= ANY(array)` PostgreSQL 15 cannot take the index's order for
        // granted: it fetched every event of the stream after the cursor and sorted them, for every page, which
        // made replaying a stream quadratic in its length.
        if filter.names.count == 1, filter.prefixes.isEmpty, let name = filter.names.first {
            return "\(column) = \(builder.bind(name))"
        }
        var alternatives: [String] = []
        if !filter.names.isEmpty {
            alternatives.append("\(column) = ANY(\(builder.bind(filter.names)))")
        }
        for prefix in filter.prefixes {
            let pattern =
                prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "_", with: "\\_")
                .replacingOccurrences(of: "%", with: "\\%") + "%"
            alternatives.append("\(column) LIKE \(builder.bind(pattern))")
        }
        return "(" + alternatives.joined(separator: " OR ") + ")"
    }

    /// One event by id.
    public func event(id: Int64) async throws -> Event? {
        try await read(ReadQuery(after: id - 1, filter: .everything, limit: 1, through: id)).events.first
    }

    /// The id of the last event ever committed (0 for an empty log); never goes back, also after deletions.
    /// The database's size as PostgreSQL counts it (tables, indexes, TOAST), or nil when it cannot be read.
    public func storageBytes() async -> Int64? {
        try? await withConnection("reading the database size") { connection, logger in
            try await Self.single(connection.query("SELECT pg_database_size(current_database())", logger: logger), Int64.self)
        }
    }

    public func head() async throws -> Int64 {
        try await withConnection("reading the head") { connection, logger in
            try await Self.single(connection.query("SELECT head FROM log_head", logger: logger), Int64.self)
        }
    }

    /// Brings this process up to date with what any node did to the database: applies the maintenance record
    /// (migration 0002) to `commits` when it moved (a raised pruning horizon, new stream deletions), then publishes
    /// the head, so subscribers wake for other nodes' commits. One statement, hence one snapshot: the head row, the
    /// one-row maintenance record and the deletions after the last one seen (none, unless the record says there
    /// are). Cheap enough for a server to run every few milliseconds. Returns the head and the record.
    @discardableResult
    public func catchUp() async throws -> (head: Int64, maintenance: MaintenanceMark) {
        let known = commits.maintenance
        let (head, mark, deletions) = try await withConnection("reading the head") { connection, logger in
            let rows = try await connection.query(
                """
                SELECT h.head, m.generation, m.pruned_through, m.deletions, d.seq, d.stream
                FROM log_head AS h CROSS JOIN maintenance AS m LEFT JOIN LATERAL (
                    SELECT seq, stream FROM stream_deletions WHERE m.deletions > \(known.deletions) AND seq > \(known.deletions)) AS d ON true
                ORDER BY d.seq
                """,
                logger: logger
            )
            var head: Int64 = 0
            var mark = MaintenanceMark()
            var deletions: [StreamDeletion] = []
            for try await row in rows.decode((Int64, Int64, Int64, Int64, Int64?, String?).self) {
                head = row.0
                mark = MaintenanceMark(generation: row.1, prunedThrough: row.2, deletions: row.3)
                if let seq = row.4, let stream = row.5 { deletions.append(StreamDeletion(seq: seq, stream: stream)) }
            }
            return (head, mark, deletions)
        }
        if mark != known { commits.apply(mark, deletions: deletions) }
        if head > commits.head { await announce(head: head) }
        return (head, mark)
    }

    /// Every stream with its counters, by name.
    public func streams() async throws -> [StreamInfo] {
        try await withConnection("listing streams") { connection, logger in
            var out: [StreamInfo] = []
            let rows = try await connection.query(
                "SELECT name, count, first_id, last_id, last_time, bytes FROM streams WHERE deleted_at IS NULL ORDER BY name",
                logger: logger
            )
            for try await row in rows.decode((String, Int64, Int64, Int64, Int64, Int64).self) {
                out.append(Self.streamInfo(row))
            }
            return out
        }
    }

    /// One stream's counters, or whether it is unknown or deleted.
    public func status(ofStream name: String) async throws -> StreamStatus {
        try await withConnection("reading a stream's status") { connection, logger in
            let rows = try await connection.query(
                "SELECT name, count, first_id, last_id, last_time, bytes, deleted_at FROM streams WHERE name = \(name)",
                logger: logger
            )
            for try await row in rows.decode((String, Int64, Int64, Int64, Int64, Int64, Int64?).self) {
                if let deletedAt = row.6 { return .deleted(at: Timestamp(microseconds: deletedAt)) }
                return .live(Self.streamInfo((row.0, row.1, row.2, row.3, row.4, row.5)))
            }
            return .unknown
        }
    }

    private static func streamInfo(_ row: (String, Int64, Int64, Int64, Int64, Int64)) -> StreamInfo {
        StreamInfo(name: row.0, count: row.1, firstID: row.2, lastID: row.3, lastTime: Timestamp(microseconds: row.4), bytes: row.5)
    }

    /// The cursor that starts a read at the first event committed at or after `time`: that event's id minus one,
    /// or the head if there is none. Binary search over ids in one read-only snapshot, since commit times never
    /// decrease along ids (the same search as `EventLog`'s, with no index on time to keep up).
    public func cursor(since time: Timestamp) async throws -> Int64 {
        try await withConnection("finding a time's cursor") { connection, logger in
            try await Self.readOnly(connection, logger) { connection in
                try await Self.cursor(since: time, connection, logger)
            }
        }
    }

    static func cursor(since time: Timestamp, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int64 {
        func probe(_ id: Int64) async throws -> (Int64, Int64)? {
            try await first(
                connection.query("SELECT id, time FROM events WHERE id >= \(id) ORDER BY id LIMIT 1", logger: logger),
                (Int64, Int64).self
            )
        }
        guard
            let last = try await first(connection.query("SELECT id, time FROM events ORDER BY id DESC LIMIT 1", logger: logger), (Int64, Int64).self),
            last.1 >= time.microseconds
        else {
            return try await single(connection.query("SELECT head FROM log_head", logger: logger), Int64.self)
        }
        var low: Int64 = 0
        var high = last.0
        while low < high {
            let middle = low + (high - low) / 2
            guard let (id, at) = try await probe(middle) else { break }
            if at >= time.microseconds { high = middle } else { low = id + 1 }
        }
        let found = try await probe(low).map(\.0) ?? high
        return found - 1
    }
}
