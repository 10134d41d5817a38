internal import Logging
internal import NIOCore
internal import PostgresNIO
public import RewindCore
public import RewindStore
import Synchronization

extension PostgresEventLog {
    // MARK: - Deletion and retention

    /// Deletes a stream: removes its events and leaves a tombstone, so its name takes no new events and
    /// reconnecting subscribers can be told it is gone. Returns false if the stream never existed.
    public func deleteStream(_ name: String) async throws -> Bool {
        let now = Timestamp.now()
        let deleted = try await write("deleting a stream") { connection, logger in
            guard
                let lastID = try await Self.first(
                    connection.query("SELECT last_id FROM streams WHERE name = \(name) AND deleted_at IS NULL", logger: logger),
                    Int64.self
                )
            else { return false }
            try await Self.recordCheckpoints(stream: name, through: nil, connection, logger)
            try await connection.query("DELETE FROM events WHERE stream = \(name)", logger: logger)
            try await Self.dropRedundantCheckpoints(through: lastID, connection, logger)
            try await connection.query("DELETE FROM idempotency_keys WHERE stream = \(name)", logger: logger)
            try await connection.query(
                """
                UPDATE streams SET deleted_at = \(now.microseconds), count = 0, bytes = 0, first_id = 0, pruned_through = \(lastID)
                WHERE name = \(name)
                """,
                logger: logger
            )
            return true
        }
        // Announced to this process's subscribers at once; if this read fails, the server's poll does it.
        if deleted { _ = try? await catchUp() }
        return deleted
    }

    /// Removes what the retention policy no longer keeps, oldest first, in transactions of at most `chunk` events
    /// so appends never wait long. Each stream's `pruned_through` records the highest id removed; ids are never
    /// reused. Every run of removed events leaves a checkpoint so the audit chain still verifies. The policy is
    /// recorded in the log for `rewind stats`.
    public func prune(_ policy: RetentionPolicy, now: Timestamp = .now(), chunk: Int = 10_000) async throws -> PruneReport {
        let report = try await removePrunable(policy, now: now, chunk: chunk)
        // The new horizon reaches this process's window and subscribers at once.
        if report.events > 0 { _ = try? await catchUp() }
        return report
    }

    /// What `prune` would remove now, without removing it (`rewind prune --dry-run`).
    public func pruneCandidates(_ policy: RetentionPolicy, now: Timestamp = .now()) async throws -> PruneReport {
        try await countPrunable(policy, now: now)
    }

    /// The retention policy last applied to this log by the server or `rewind prune`, as its description.
    public func recordedRetention() async throws -> String? {
        try await withConnection("reading the retention policy") { connection, logger in
            try await Self.first(connection.query("SELECT value FROM log_settings WHERE key = 'retention'", logger: logger), String.self)
        }
    }

    /// Forgets idempotency keys older than the dedupe window.
    public func expireIdempotencyKeys(now: Timestamp = .now()) async throws -> Int {
        let horizon = now.microseconds - configuration.idempotencyWindow.microseconds
        return try await withConnection("expiring idempotency keys") { connection, logger in
            let count: Int64 = try await Self.single(
                connection.query(
                    "WITH gone AS (DELETE FROM idempotency_keys WHERE time < \(horizon) RETURNING 1) SELECT count(*)::int8 FROM gone",
                    logger: logger
                ),
                Int64.self
            )
            return Int(count)
        }
    }

    // MARK: - Retention steps (the passes are `PrunableStore`'s)

    package func recordRetention(_ policy: RetentionPolicy) async throws {
        let text = policy.description
        guard try await recordedRetention() != text else { return }
        try await withConnection("recording the retention policy") { connection, logger in
            try await connection.query(
                """
                INSERT INTO log_settings (key, value) VALUES ('retention', \(text))
                ON CONFLICT (key) DO UPDATE SET value = excluded.value
                """,
                logger: logger
            )
        }
    }

    package func prunableStreams() async throws -> [(name: String, count: Int64)] {
        try await withConnection("listing streams to prune") { connection, logger in
            var out: [(name: String, count: Int64)] = []
            let rows = try await connection.query(
                "SELECT name, count FROM streams WHERE deleted_at IS NULL AND count > 0 ORDER BY name",
                logger: logger
            )
            for try await (name, count) in rows.decode((String, Int64).self) { out.append((name, count)) }
            return out
        }
    }

    package func pruneCutoff(stream: String, offset: Int64?, horizon: Timestamp?) async throws -> Int64 {
        try await withConnection("finding what pruning removes") { connection, logger in
            try await Self.readOnly(connection, logger) { connection in
                var cutoff: Int64 = 0
                if let offset {
                    cutoff =
                        try await Self.first(
                            connection.query("SELECT id FROM events WHERE stream = \(stream) ORDER BY id LIMIT 1 OFFSET \(offset)", logger: logger),
                            Int64.self
                        ) ?? 0
                }
                if let horizon { cutoff = max(cutoff, try await Self.cursor(since: horizon, connection, logger)) }
                return cutoff
            }
        }
    }

    package func removeEvents(stream: String, through cutoff: Int64, limit: Int) async throws -> (count: Int64, bytes: Int64, last: Int64) {
        try await write("pruning") { connection, logger in
            let (count, bytes, last) = try await Self.single(
                connection.query(
                    """
                    SELECT count(*)::int8, coalesce(sum(length(data)), 0)::int8, coalesce(max(id), 0)::int8 FROM (
                        SELECT id, data FROM events WHERE stream = \(stream) AND id <= \(cutoff) ORDER BY id LIMIT \(limit)) AS c
                    """,
                    logger: logger
                ),
                (Int64, Int64, Int64).self
            )
            guard count > 0 else { return (0, 0, 0) }
            try await Self.recordCheckpoints(stream: stream, through: last, connection, logger)
            try await connection.query("DELETE FROM events WHERE stream = \(stream) AND id <= \(last)", logger: logger)
            try await Self.dropRedundantCheckpoints(through: last, connection, logger)
            try await connection.query(
                """
                UPDATE streams SET count = count - \(count), bytes = bytes - \(bytes), pruned_through = greatest(pruned_through, \(last)),
                    first_id = coalesce((SELECT min(id) FROM events WHERE stream = \(stream)), 0)
                WHERE name = \(stream)
                """,
                logger: logger
            )
            return (count, bytes, last)
        }
    }

    package func countEvents(stream: String, through cutoff: Int64) async throws -> (count: Int64, bytes: Int64, last: Int64) {
        try await withConnection("counting what pruning removes") { connection, logger in
            try await Self.single(
                connection.query(
                    """
                    SELECT count(*)::int8, coalesce(sum(length(data)), 0)::int8, coalesce(max(id), 0)::int8
                    FROM events WHERE stream = \(stream) AND id <= \(cutoff)
                    """,
                    logger: logger
                ),
                (Int64, Int64, Int64).self
            )
        }
    }

    // MARK: - Audit chain checkpoints

    /// Records checkpoints before events of `stream` (up to `through`, if given) are deleted: every event about
    /// to go whose next event stays (or that is the newest) leaves its id and hash, what the following event
    /// chains from. Runs in the deleting transaction, as `EventLog.recordCheckpoints` does.
    static func recordCheckpoints(stream: String, through: Int64?, _ connection: PostgresConnection, _ logger: Logger) async throws {
        let limit = through ?? Int64.max
        try await connection.query(
            """
            INSERT INTO chain_checkpoints (id, hash)
            SELECT d.id, d.hash FROM events AS d
            WHERE d.stream = \(stream) AND d.id <= \(limit) AND NOT EXISTS (
                SELECT 1 FROM events AS n
                WHERE n.id = (SELECT min(id) FROM events WHERE id > d.id) AND n.stream = \(stream) AND n.id <= \(limit))
            ON CONFLICT (id) DO UPDATE SET hash = excluded.hash
            """,
            logger: logger
        )
    }

    /// Drops checkpoints up to `through` that a later checkpoint made redundant: one with another checkpoint
    /// before the next event. The newest checkpoint is never dropped. Runs in the deleting transaction.
    static func dropRedundantCheckpoints(through: Int64, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query(
            """
            DELETE FROM chain_checkpoints AS c WHERE c.id <= \(through) AND EXISTS (
                SELECT 1 FROM chain_checkpoints AS later
                WHERE later.id > c.id
                    AND later.id < coalesce((SELECT min(id) FROM events WHERE id > c.id), 9223372036854775807))
            """,
            logger: logger
        )
    }

    // MARK: - Import

    /// True when no event was ever committed to this log.
    public func isEmpty() async throws -> Bool {
        try await withConnection("checking whether the log is empty") { connection, logger in
            try await Self.single(
                connection.query(
                    "SELECT (SELECT head FROM log_head) = 0 AND NOT EXISTS (SELECT 1 FROM chain_checkpoints)",
                    logger: logger
                ),
                Bool.self
            )
        }
    }

    /// Writes exported records as they were, ids, times and hashes included, in one transaction. The caller
    /// checks the chain; records must come in id order, and after every event already in the log. The head row
    /// ends at the highest id seen (or named by a `.head` record), chaining from the newest event or checkpoint.
    public func importRecords(_ records: [ImportRecord]) async throws {
        var events = ImportRows()
        var checkpoints: [(Int64, [UInt8])] = []
        var states: [(name: String, deletedAt: Int64?, prunedThrough: Int64)] = []
        var head: Int64 = 0
        for record in records {
            switch record {
            case .event(let event, let hash): events.append(event, hash: hash)
            case .checkpoint(let id, let hash): checkpoints.append((id, hash))
            case .streamState(let name, let deletedAt, let prunedThrough): states.append((name, deletedAt?.microseconds, prunedThrough))
            case .head(let id): head = max(head, id)
            }
        }
        try await write("importing") { [events, checkpoints, states, head] connection, logger in
            if !events.ids.isEmpty {
                // Per stream, in id order: how many, the first and last id, the last time and the bytes.
                var counts: [String: (count: Int64, first: Int64, last: Int64, time: Int64, bytes: Int64)] = [:]
                for index in events.ids.indices {
                    let stream = events.streams[index]
                    let id = events.ids[index]
                    let bytes = Int64(events.datas[index].readableBytes)
                    if let seen = counts[stream] {
                        counts[stream] = (seen.count + 1, seen.first, id, events.times[index], seen.bytes + bytes)
                    } else {
                        counts[stream] = (1, id, id, events.times[index], bytes)
                    }
                }
                let streams = counts.sorted { $0.key < $1.key }
                let names = streams.map { $0.key }
                let numbers = streams.map { $0.value.count }
                let firsts = streams.map { $0.value.first }
                let lasts = streams.map { $0.value.last }
                let times = streams.map { $0.value.time }
                let sizes = streams.map { $0.value.bytes }
                try await connection.query(
                    """
                    WITH new_events AS (
                        INSERT INTO events (id, stream, type, data, json, time, key, hash)
                        SELECT u.id, u.stream, u.type, u.data, u.json, u.time, CASE WHEN u.keyed THEN u.key END, u.hash
                        FROM unnest(\(events.ids)::int8[], \(events.streams)::text[], \(events.types)::text[], \(events.datas)::bytea[],
                            \(events.jsons)::bool[], \(events.times)::int8[], \(events.keys)::text[], \(events.keyed)::bool[],
                            \(events.hashes)::bytea[]) AS u(id, stream, type, data, json, time, key, keyed, hash)
                    )
                    INSERT INTO streams AS s (name, count, first_id, last_id, last_time, bytes)
                    SELECT * FROM unnest(\(names)::text[], \(numbers)::int8[], \(firsts)::int8[], \(lasts)::int8[], \(times)::int8[], \(sizes)::int8[])
                    ON CONFLICT (name) DO UPDATE SET count = s.count + excluded.count, last_id = excluded.last_id,
                        last_time = excluded.last_time, bytes = s.bytes + excluded.bytes,
                        first_id = CASE WHEN s.count = 0 THEN excluded.first_id ELSE s.first_id END
                    """,
                    logger: logger
                )
            }
            for (id, hash) in checkpoints {
                try await connection.query(
                    """
                    INSERT INTO chain_checkpoints (id, hash) VALUES (\(id), \(ByteBuffer(bytes: hash)))
                    ON CONFLICT (id) DO UPDATE SET hash = excluded.hash
                    """,
                    logger: logger
                )
            }
            for state in states {
                try await connection.query(
                    """
                    INSERT INTO streams (name, count, first_id, last_id, last_time, bytes, deleted_at, pruned_through)
                    VALUES (\(state.name), 0, 0, \(state.prunedThrough), 0, 0, \(state.deletedAt), \(state.prunedThrough))
                    ON CONFLICT (name) DO UPDATE SET deleted_at = excluded.deleted_at, pruned_through = excluded.pruned_through
                    """,
                    logger: logger
                )
            }
            // The chain continues from the newest event or checkpoint (a checkpoint on a tie, as EventLog has it);
            // each lookup walks an index from its end, so importing in chunks stays linear.
            try await connection.query(
                """
                UPDATE log_head SET
                    head = greatest(head, \(head), coalesce((SELECT max(id) FROM events), 0)),
                    last_time = greatest(last_time, coalesce((SELECT time FROM events ORDER BY id DESC LIMIT 1), 0)),
                    chain_tip = coalesce((
                        SELECT hash FROM (
                            (SELECT id, hash, 1 AS rank FROM events ORDER BY id DESC LIMIT 1)
                            UNION ALL (SELECT id, hash, 0 AS rank FROM chain_checkpoints ORDER BY id DESC LIMIT 1)) AS tip
                        ORDER BY id DESC, rank LIMIT 1), chain_tip)
                """,
                logger: logger
            )
        }
    }

    /// Columns of imported events, bound as arrays.
    struct ImportRows: Sendable {
        var ids: [Int64] = []
        var streams: [String] = []
        var types: [String] = []
        var datas: [ByteBuffer] = []
        var jsons: [Bool] = []
        var times: [Int64] = []
        var keys: [String] = []
        var keyed: [Bool] = []
        var hashes: [ByteBuffer] = []

        mutating func append(_ event: Event, hash: [UInt8]) {
            ids.append(event.id)
            streams.append(event.stream)
            types.append(event.type)
            datas.append(ByteBuffer(string: event.data))
            jsons.append(event.isJSON)
            times.append(event.time.microseconds)
            keys.append(event.key ?? "")
            keyed.append(event.key != nil)
            hashes.append(ByteBuffer(bytes: hash))
        }
    }

    // MARK: - Readiness

    /// Throws `StoreError.unavailable` unless the store takes writes now: PostgreSQL answers, is not a read-only
    /// standby, and, after a commit failed, a small write of its own commits. `GET /readyz` answers from this.
    public func checkWritable() async throws {
        if writerClosed { throw StoreError.closed }
        let failed = writeFailure.withLock { $0 }
        try await withConnection("checking that PostgreSQL takes writes") { connection, logger in
            let (recovery, readOnly) = try await Self.single(
                connection.query("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')", logger: logger),
                (Bool, String).self
            )
            if recovery || readOnly == "on" {
                throw StoreError.unavailable("PostgreSQL takes no writes (a read-only standby or transaction)")
            }
            if failed != nil {
                try await connection.query(
                    """
                    INSERT INTO log_settings (key, value) VALUES ('write_probe', \(Timestamp.now().description))
                    ON CONFLICT (key) DO UPDATE SET value = excluded.value
                    """,
                    logger: logger
                )
            }
        }
        if failed != nil { writeFailure.withLock { $0 = nil } }
    }
}

extension PostgresEventLog: PrunableStore {}
