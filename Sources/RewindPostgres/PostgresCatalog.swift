internal import Foundation
public import Logging
internal import NIOCore
internal import PostgresNIO
import RewindCore
public import RewindStore

/// The PostgreSQL log as the admin commands read it (`rewind query`, `streams`, `stats`, `verify`, `export`): one
/// connection of its own, every session read-only (`default_transaction_read_only`), every call one
/// `REPEATABLE READ READ ONLY` transaction, hence one snapshot. It never migrates and never locks the head row,
/// so it runs beside any number of servers writing to the same database.
public final class PostgresCatalog: LogCatalog {
    public let configuration: PostgresStoreConfiguration
    let connection: PostgresConnection
    let logger: Logger

    /// The URL without its password.
    public var location: String { configuration.description }

    /// Events a walk or a `--where` query reads per statement.
    let pageSize: Int

    private init(configuration: PostgresStoreConfiguration, connection: PostgresConnection, logger: Logger, pageSize: Int) {
        self.configuration = configuration
        self.connection = connection
        self.logger = logger
        self.pageSize = pageSize
    }

    /// Connects and checks that the database holds a Rewind log this build can read. Throws
    /// `PostgresConfigurationError` for settings that cannot work (never showing the password),
    /// `StoreError.unavailable` when PostgreSQL cannot be reached in time, `StoreError.schemaTooNew` for a log
    /// migrated by a newer Rewind, `AdminError` for a database without a log.
    /// - Parameter pageSize: rows a walk or a `--where` query reads per statement (small in tests, to cross pages).
    public static func open(configuration: PostgresStoreConfiguration, logger: Logger, pageSize: Int = 5_000) async throws -> PostgresCatalog {
        let connection: PostgresConnection
        do {
            connection = try await withDeadline(
                configuration.timeout,
                "connecting to PostgreSQL at \(configuration.host):\(configuration.port)",
                discard: { try? await $0.close() }
            ) {
                var settings = try PostgresEventLog.connectionSettings(configuration)
                // A walk may wait on its reader (`export | import`) between pages for longer than the server's idle
                // limit; a read-only transaction holds no lock a writer waits for, so it may idle.
                settings.options.additionalStartupParameters =
                    PostgresEventLog.sessionSettings(configuration).filter { $0.0 != "idle_in_transaction_session_timeout" } + [
                        ("default_transaction_read_only", "on")
                    ]
                return try await PostgresConnection.connect(configuration: settings, id: 0, logger: logger)
            }
        } catch {
            throw PostgresFailures.map(error, configuration)
        }
        let catalog = PostgresCatalog(configuration: configuration, connection: connection, logger: logger, pageSize: max(1, pageSize))
        do {
            try await catalog.checkSchema()
        } catch {
            await catalog.close()
            throw error
        }
        return catalog
    }

    /// Refuses a database without a Rewind log, or with migrations this build does not know.
    private func checkSchema() async throws {
        let (hasMigrations, hasEvents) = try await read { connection, logger in
            try await PostgresEventLog.single(
                connection.query(
                    "SELECT to_regclass('rewind_migrations') IS NOT NULL, to_regclass('events') IS NOT NULL AND to_regclass('log_head') IS NOT NULL",
                    logger: logger
                ),
                (Bool, Bool).self
            )
        }
        guard hasMigrations, hasEvents else {
            throw AdminError("\(location) holds no Rewind log (no events table); rewind serve or rewind import creates one")
        }
        let applied = try await read { connection, logger in
            var names: [String] = []
            for try await name in try await connection.query("SELECT name FROM rewind_migrations", logger: logger).decode(String.self) {
                names.append(name)
            }
            return names
        }
        let known = Migration.embedded.map(\.name)
        guard Set(applied).isSubset(of: Set(known)) else { throw StoreError.schemaTooNew(known: known) }
    }

    public func close() async {
        try? await connection.close()
    }

    /// Runs `body` in one read-only snapshot, mapping the driver's failures to one-line errors.
    func read<T>(_ body: (PostgresConnection, Logger) async throws -> T) async throws -> T {
        do {
            return try await PostgresEventLog.readOnly(connection, logger) { connection in try await body(connection, logger) }
        } catch let error as AdminError {
            throw error
        } catch {
            throw PostgresFailures.map(error, configuration)
        }
    }
}

// MARK: - Queries

extension PostgresCatalog {
    /// The columns every event read selects, in the order `storedEvent` decodes them.
    static let eventColumns = "id, stream, type, data, json, time, key, hash"

    /// The events a query selects. The ids, streams, types, times and `--contains` are conditions of one indexed
    /// statement; `--where` conditions are checked on each row as pages arrive (by `ClientSideFilter`, with
    /// SQLite's JSON rules: PostgreSQL before 16 cannot tell valid JSON from invalid in SQL without failing the
    /// statement), so the limit counts only rows that match.
    public func events(_ query: EventQuery) async throws -> [StoredEvent] {
        try await read { connection, logger in
            let fields = Self.fieldFilter(query)
            var statement = try await Self.statement(query, pageSize: fields.isEmpty ? nil : pageSize, connection, logger)
            var out: [StoredEvent] = []
            while true {
                var count = 0
                var lastID: Int64?
                for try await row in try await connection.query(statement.query(), logger: logger) {
                    let stored = try Self.storedEvent(row)
                    count += 1
                    lastID = stored.event.id
                    if fields.isEmpty || fields.matches(stored.event, parsedData: nil) { out.append(stored) }
                }
                guard !fields.isEmpty, count == pageSize, let lastID else { break }
                if let limit = query.limit, out.count >= limit { break }
                statement.resume(after: lastID)
            }
            if let limit = query.limit, out.count > limit { out.removeLast(out.count - limit) }
            return out
        }
    }

    /// PostgreSQL's plan for the statement `events` runs (its first page, for a `--where` query), as `EXPLAIN`
    /// prints it.
    public func plan(_ query: EventQuery) async throws -> [String] {
        try await read { connection, logger in
            let fields = Self.fieldFilter(query)
            let statement = try await Self.statement(query, pageSize: fields.isEmpty ? nil : pageSize, connection, logger)
            var lines: [String] = []
            if !fields.isEmpty {
                lines.append("PAGES OF \(pageSize) ROWS, EACH CHECKED FOR THE --where CONDITIONS AS IT ARRIVES:")
            }
            let explain = statement.query(prefix: "EXPLAIN ")
            for try await line in try await connection.query(explain, logger: logger).decode(String.self) {
                lines.append(line)
            }
            return lines
        }
    }

    /// The `--where` conditions alone, as `ClientSideFilter` checks them.
    private static func fieldFilter(_ query: EventQuery) -> ClientSideFilter {
        var fieldsOnly = EventQuery()
        fieldsOnly.fields = query.fields
        return ClientSideFilter(fieldsOnly)
    }

    /// A query's statement, before its values are bound: times become id bounds (commit times never decrease
    /// along ids), so every statement walks the primary key or the `(stream, id)` index and stops at its limit.
    struct Statement {
        var conditions: [String]
        var binds: [any PostgresDynamicTypeEncodable & Sendable]
        var reverse: Bool
        var limit: Int?
        var cursor: Int64?

        mutating func resume(after id: Int64) { cursor = id }

        func query(prefix: String = "") -> PostgresQuery {
            var builder = QueryBuilder()
            var all: [String] = []
            for condition in conditions {
                // Conditions hold `?` for their values, numbered here in order.
                var text = ""
                var parts = condition.split(separator: "?", omittingEmptySubsequences: false)[...]
                text += parts.removeFirst()
                for part in parts {
                    text += "$\(builder.binds.count + 1)" + part
                    builder.binds.append(binds[builder.binds.count])
                }
                all.append(text)
            }
            if let cursor { all.append(reverse ? "id < \(builder.bind(cursor))" : "id > \(builder.bind(cursor))") }
            var sql = prefix + "SELECT \(PostgresCatalog.eventColumns) FROM events"
            if !all.isEmpty { sql += " WHERE " + all.joined(separator: " AND ") }
            sql += reverse ? " ORDER BY id DESC" : " ORDER BY id"
            if let limit { sql += " LIMIT \(builder.bind(limit))" }
            builder.sql = sql
            return builder.query
        }
    }

    /// - Parameter pageSize: the limit of each page when rows are checked after reading, else nil (the query's own).
    private static func statement(_ query: EventQuery, pageSize: Int?, _ connection: PostgresConnection, _ logger: Logger) async throws -> Statement {
        var conditions: [String] = []
        var binds: [any PostgresDynamicTypeEncodable & Sendable] = []
        var low = query.after ?? 0
        var high = query.before.map { $0 - 1 } ?? Int64.max
        if let since = query.since { low = max(low, try await PostgresEventLog.cursor(since: since, connection, logger)) }
        if let until = query.until { high = min(high, try await PostgresEventLog.cursor(since: until, connection, logger)) }
        if low > 0 {
            conditions.append("id > ?")
            binds.append(low)
        }
        if high < Int64.max {
            conditions.append("id <= ?")
            binds.append(high)
        }
        if let filter = try query.streamFilter() {
            var builder = QueryBuilder()
            if let condition = PostgresEventLog.streamCondition(filter, column: "stream", &builder) {
                // The builder numbered its values from $1; they become `?` here, numbered again with the rest.
                var text = condition
                for index in stride(from: builder.binds.count, through: 1, by: -1) {
                    text = text.replacingOccurrences(of: "$\(index)", with: "?")
                }
                conditions.append(text)
                binds += Self.values(of: filter)
            }
        }
        if !query.types.isEmpty {
            conditions.append("type = ANY(?)")
            binds.append(query.types)
        }
        if let text = query.text {
            // A byte search, as SQLite's instr: the data column holds the event's UTF-8 bytes.
            conditions.append("position(? in data) > 0")
            binds.append(ByteBuffer(string: text))
        }
        let limit = pageSize ?? query.limit
        return Statement(conditions: conditions, binds: binds, reverse: query.reverse, limit: limit, cursor: nil)
    }

    /// The values `PostgresEventLog.streamCondition` binds for a filter, in its order: the names, then one
    /// `LIKE` pattern per prefix.
    private static func values(of filter: EventFilter) -> [any PostgresDynamicTypeEncodable & Sendable] {
        var values: [any PostgresDynamicTypeEncodable & Sendable] = []
        if filter.names.count == 1, filter.prefixes.isEmpty, let name = filter.names.first {
            return [name]  // one stream is an equality there, not `= ANY(array)`
        }
        if !filter.names.isEmpty { values.append(filter.names) }
        for prefix in filter.prefixes {
            values.append(
                prefix.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "_", with: "\\_")
                    .replacingOccurrences(of: "%", with: "\\%") + "%"
            )
        }
        return values
    }

    /// A row selected with `eventColumns`.
    static func storedEvent(_ row: PostgresRow) throws -> StoredEvent {
        let (id, stream, type, data, isJSON, time, key, hash) = try row.decode(
            (Int64, String, String, ByteBuffer, Bool, Int64, String?, ByteBuffer).self
        )
        return StoredEvent(
            event: Event(
                id: id,
                stream: stream,
                type: type,
                data: String(decoding: data.readableBytesView, as: UTF8.self),
                isJSON: isJSON,
                time: Timestamp(microseconds: time),
                key: key
            ),
            hash: Array(hash.readableBytesView)
        )
    }
}

// MARK: - Streams and stats

extension PostgresCatalog {
    public func streams(includeDeleted: Bool) async throws -> [StreamSummary] {
        try await read { connection, logger in try await Self.streams(includeDeleted: includeDeleted, connection, logger) }
    }

    static func streams(includeDeleted: Bool, _ connection: PostgresConnection, _ logger: Logger) async throws -> [StreamSummary] {
        let sql = """
            SELECT s.name, s.count, s.first_id, s.last_id, s.last_time, s.bytes, s.pruned_through, s.deleted_at,
                (SELECT time FROM events WHERE id = s.first_id)
            FROM streams AS s \(includeDeleted ? "" : "WHERE s.deleted_at IS NULL") ORDER BY s.name
            """
        var out: [StreamSummary] = []
        let rows = try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        for try await row in rows.decode((String, Int64, Int64, Int64, Int64, Int64, Int64, Int64?, Int64?).self) {
            let count = row.1
            out.append(
                StreamSummary(
                    name: row.0,
                    count: count,
                    firstID: count > 0 ? row.2 : nil,
                    lastID: row.3,
                    firstTime: count > 0 ? row.8.map(Timestamp.init(microseconds:)) : nil,
                    lastTime: count > 0 ? Timestamp(microseconds: row.4) : nil,
                    bytes: row.5,
                    prunedThrough: row.6,
                    deletedAt: row.7.map(Timestamp.init(microseconds:))
                )
            )
        }
        return out
    }

    /// Counts and sizes from the per-stream rows the writers keep, the id and time range from the two ends of the
    /// primary key, and the database's size as PostgreSQL counts it (tables, indexes, TOAST). A PostgreSQL
    /// database has no WAL file or free-page count of its own, so those are nil.
    public func stats() async throws -> LogStats {
        try await read { connection, logger in
            let streams = try await Self.streams(includeDeleted: true, connection, logger)
            let first = try await PostgresEventLog.first(
                connection.query("SELECT id, time FROM events ORDER BY id LIMIT 1", logger: logger),
                (Int64, Int64).self
            )
            let last = try await PostgresEventLog.first(
                connection.query("SELECT id, time FROM events ORDER BY id DESC LIMIT 1", logger: logger),
                (Int64, Int64).self
            )
            let (head, size, checkpoints) = try await PostgresEventLog.single(
                connection.query(
                    "SELECT (SELECT head FROM log_head), pg_database_size(current_database()), (SELECT count(*)::int8 FROM chain_checkpoints)",
                    logger: logger
                ),
                (Int64, Int64, Int64).self
            )
            let retention = try await PostgresEventLog.first(
                connection.query("SELECT value FROM log_settings WHERE key = 'retention'", logger: logger),
                String.self
            )
            return LogStats(
                events: streams.reduce(0) { $0 + $1.count },
                bytes: streams.reduce(0) { $0 + $1.bytes },
                firstID: first?.0,
                lastID: last?.0,
                firstTime: first.map { Timestamp(microseconds: $0.1) },
                lastTime: last.map { Timestamp(microseconds: $0.1) },
                head: head,
                databaseBytes: size,
                walBytes: nil,
                freeBytes: nil,
                checkpoints: checkpoints,
                retention: retention,
                streams: streams
            )
        }
    }
}

// MARK: - Walking the log
