internal import GRDB
public import RewindCore

extension EventLog {
    /// Deletes a stream: removes its events and leaves a tombstone, so its name takes no new events and
    /// reconnecting subscribers can be told it is gone. Returns false if the stream never existed. The deletion
    /// is announced to this process's subscribers at once, through the path that announces other processes'.
    public func deleteStream(_ name: String) async throws -> Bool {
        let now = Timestamp.now()
        let deleted = try await queuedWrite { db in
            guard let lastID = try Int64.fetchOne(db, sql: "SELECT last_id FROM streams WHERE name = ? AND deleted_at IS NULL", arguments: [name])
            else {
                return false
            }
            try Self.recordCheckpoints(deleting: "$stream = ?", arguments: [name], db)
            try db.execute(sql: "DELETE FROM events WHERE stream = ?", arguments: [name])
            try Self.dropRedundantCheckpoints(through: lastID, db)
            try db.execute(sql: "DELETE FROM idempotency_keys WHERE stream = ?", arguments: [name])
            try db.execute(
                sql: "UPDATE streams SET deleted_at = ?, count = 0, bytes = 0, first_id = 0, pruned_through = ? WHERE name = ?",
                arguments: [now.microseconds, lastID, name]
            )
            return true
        }
        // Done; if this read fails, the server's poll announces the deletion within one interval.
        if deleted { _ = try? await catchUp() }
        return deleted
    }

    /// Removes what the retention policy no longer keeps, oldest first, in transactions of at most `chunk` events
    /// so appends never wait long. Each stream's `pruned_through` records the highest id removed; ids are never
    /// reused. Every run of removed events leaves a checkpoint so the audit chain still verifies, and the freed
    /// pages go back to the file system. The policy is recorded in the log for `rewind stats`.
    public func prune(_ policy: RetentionPolicy, now: Timestamp = .now(), chunk: Int = 10_000) async throws -> PruneReport {
        let report = try await removePrunable(policy, now: now, chunk: chunk)
        if report.events > 0 {
            // The new horizon reaches this process's window and subscribers before space is reclaimed.
            _ = try? await catchUp()
            try await reclaimSpace()
        }
        return report
    }

    /// Brings this process up to date with what any process did to the file: applies the maintenance record
    /// (migration 0004) to `commits` when it moved (a raised pruning horizon, new stream deletions), then
    /// publishes the head. One small read of two single-row lookups, plus the new deletions when there are some,
    /// in one snapshot: cheap enough for a server to run every few milliseconds. Returns the head and the record.
    @discardableResult
    public func catchUp() async throws -> (head: Int64, maintenance: MaintenanceMark) {
        let known = commits.maintenance
        let (head, mark, deletions) = try await pool.read { db in
            let (head, mark) = try Self.marks(db)
            guard mark.deletions > known.deletions else { return (head, mark, [StreamDeletion]()) }
            let deletions = try Row.fetchAll(
                db.cachedStatement(sql: "SELECT seq, stream FROM stream_deletions WHERE seq > ? ORDER BY seq"),
                arguments: [known.deletions]
            ).map { StreamDeletion(seq: $0[0], stream: $0[1]) }
            return (head, mark, deletions)
        }
        if mark != known { commits.apply(mark, deletions: deletions) }
        if head > commits.head { commits.publish(head: head) }
        return (head, mark)
    }

    /// The head and the maintenance record, read together.
    static func marks(_ db: Database) throws -> (head: Int64, maintenance: MaintenanceMark) {
        let row = try Row.fetchOne(
            db.cachedStatement(
                sql: """
                    SELECT (SELECT seq FROM sqlite_sequence WHERE name = 'events'), generation, pruned_through, deletions
                    FROM maintenance WHERE id = 1
                    """
            )
        )
        guard let row else { return (try head(db), MaintenanceMark()) }
        return ((row[0] as Int64?) ?? 0, MaintenanceMark(generation: row[1], prunedThrough: row[2], deletions: row[3]))
    }

    /// What `prune` would remove now, without removing it (`rewind prune --dry-run`).
    public func pruneCandidates(_ policy: RetentionPolicy, now: Timestamp = .now()) async throws -> PruneReport {
        try await countPrunable(policy, now: now)
    }

    /// The retention policy last applied to this log by the server or `rewind prune`, as its description.
    public func recordedRetention() async throws -> String? {
        try await pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM log_settings WHERE key = 'retention'") }
    }

    /// Forgets idempotency keys older than the dedupe window.
    public func expireIdempotencyKeys(now: Timestamp = .now()) async throws -> Int {
        let horizon = now.microseconds - configuration.idempotencyWindow.microseconds
        return try await queuedWrite { db in
            try db.execute(sql: "DELETE FROM idempotency_keys WHERE time < ?", arguments: [horizon])
            return db.changesCount
        }
    }
}

extension EventLog: PrunableStore {
    package func recordRetention(_ policy: RetentionPolicy) async throws {
        let text = policy.description
        try await queuedWrite { db in
            let current = try String.fetchOne(db, sql: "SELECT value FROM log_settings WHERE key = 'retention'")
            guard current != text else { return }
            try db.execute(sql: "INSERT OR REPLACE INTO log_settings (key, value) VALUES ('retention', ?)", arguments: [text])
        }
    }

    package func prunableStreams() async throws -> [(name: String, count: Int64)] {
        try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, count FROM streams WHERE deleted_at IS NULL AND count > 0 ORDER BY name").map {
                (name: $0[0] as String, count: $0[1] as Int64)
            }
        }
    }

    package func pruneCutoff(stream: String, offset: Int64?, horizon: Timestamp?) async throws -> Int64 {
        try await pool.read { db in
            var cutoff: Int64 = 0
            if let offset {
                cutoff =
                    try Int64.fetchOne(db, sql: "SELECT id FROM events WHERE stream = ? ORDER BY id LIMIT 1 OFFSET ?", arguments: [stream, offset])
                    ?? 0
            }
            if let horizon { cutoff = max(cutoff, try Self.cursor(since: horizon, db)) }
            return cutoff
        }
    }

    package func removeEvents(stream: String, through cutoff: Int64, limit: Int) async throws -> (count: Int64, bytes: Int64, last: Int64) {
        try await queuedWrite { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT count(*), coalesce(sum(length(CAST(data AS BLOB))), 0), coalesce(max(id), 0) FROM (
                        SELECT id, data FROM events WHERE stream = ? AND id <= ? ORDER BY id LIMIT ?)
                    """,
                arguments: [stream, cutoff, limit]
            )!
            let (count, bytes, last): (Int64, Int64, Int64) = (row[0], row[1], row[2])
            guard count > 0 else { return (0, 0, 0) }
            try Self.recordCheckpoints(deleting: "$stream = ? AND $id <= ?", arguments: [stream, last], db)
            try db.execute(sql: "DELETE FROM events WHERE stream = ? AND id <= ?", arguments: [stream, last])
            try Self.dropRedundantCheckpoints(through: last, db)
            try db.execute(
                sql: """
                    UPDATE streams SET count = count - ?, bytes = bytes - ?, pruned_through = max(pruned_through, ?),
                        first_id = coalesce((SELECT min(id) FROM events WHERE stream = ?), 0)
                    WHERE name = ?
                    """,
                arguments: [count, bytes, last, stream, stream]
            )
            return (count, bytes, last)
        }
    }

    package func countEvents(stream: String, through cutoff: Int64) async throws -> (count: Int64, bytes: Int64, last: Int64) {
        try await pool.read { db in
            let row = try Row.fetchOne(
                db,
                sql: """
                    SELECT count(*), coalesce(sum(length(CAST(data AS BLOB))), 0), coalesce(max(id), 0)
                    FROM events WHERE stream = ? AND id <= ?
                    """,
                arguments: [stream, cutoff]
            )!
            return (row[0], row[1], row[2])
        }
    }
}
