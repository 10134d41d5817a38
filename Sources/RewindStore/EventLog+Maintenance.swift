internal import GRDB
public import RewindCore

extension EventLog {
    /// Deletes a stream: removes its events and leaves a tombstone, so its name takes no new events and
    /// reconnecting subscribers can be told it is gone. Returns false if the stream never existed.
    public func deleteStream(_ name: String) async throws -> Bool {
        let now = Timestamp.now()
        return try await pool.write { db in
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
    }

    /// Removes what the retention policy no longer keeps, oldest first, in transactions of at most `chunk` events
    /// so appends never wait long. Each stream's `pruned_through` records the highest id removed; ids are never
    /// reused. Every run of removed events leaves a checkpoint so the audit chain still verifies, and the freed
    /// pages go back to the file system. The policy is recorded in the log for `rewind stats`.
    public func prune(_ policy: RetentionPolicy, now: Timestamp = .now(), chunk: Int = 10_000) async throws -> PruneReport {
        var report = PruneReport()
        guard !policy.isUnlimited else { return report }
        try await recordRetention(policy)
        for (stream, cutoff) in try await pruneCutoffs(policy, now: now) {
            while true {
                let removed: (count: Int64, bytes: Int64, last: Int64) = try await pool.write { db in
                    let row = try Row.fetchOne(
                        db,
                        sql: """
                            SELECT count(*), coalesce(sum(length(CAST(data AS BLOB))), 0), coalesce(max(id), 0) FROM (
                                SELECT id, data FROM events WHERE stream = ? AND id <= ? ORDER BY id LIMIT ?)
                            """,
                        arguments: [stream, cutoff, chunk]
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
                guard removed.count > 0 else { break }
                report.events += removed.count
                report.bytes += removed.bytes
                report.streams[stream] = removed.last
                report.counts[stream, default: 0] += removed.count
                if removed.count < chunk { break }
            }
        }
        if report.events > 0 { try await reclaimSpace() }
        return report
    }

    /// What `prune` would remove now, without removing it (`rewind prune --dry-run`).
    public func pruneCandidates(_ policy: RetentionPolicy, now: Timestamp = .now()) async throws -> PruneReport {
        var report = PruneReport()
        guard !policy.isUnlimited else { return report }
        for (stream, cutoff) in try await pruneCutoffs(policy, now: now) {
            let row = try await pool.read { db in
                try Row.fetchOne(
                    db,
                    sql: """
                        SELECT count(*), coalesce(sum(length(CAST(data AS BLOB))), 0), coalesce(max(id), 0)
                        FROM events WHERE stream = ? AND id <= ?
                        """,
                    arguments: [stream, cutoff]
                )!
            }
            let (count, bytes, last): (Int64, Int64, Int64) = (row[0], row[1], row[2])
            guard count > 0 else { continue }
            report.events += count
            report.bytes += bytes
            report.streams[stream] = last
            report.counts[stream] = count
        }
        return report
    }

    /// Per stream, the highest id the policy removes (streams that lose nothing are left out).
    private func pruneCutoffs(_ policy: RetentionPolicy, now: Timestamp) async throws -> [(stream: String, cutoff: Int64)] {
        let streams = try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, count FROM streams WHERE deleted_at IS NULL AND count > 0 ORDER BY name").map {
                (name: $0[0] as String, count: $0[1] as Int64)
            }
        }
        var cutoffs: [(stream: String, cutoff: Int64)] = []
        for stream in streams {
            let limits = policy.limits(for: stream.name)
            guard !limits.isUnlimited else { continue }
            let cutoff: Int64 = try await pool.read { db in
                var cutoff: Int64 = 0
                if let maxEvents = limits.maxEvents, stream.count > maxEvents {
                    cutoff =
                        try Int64.fetchOne(
                            db,
                            sql: "SELECT id FROM events WHERE stream = ? ORDER BY id LIMIT 1 OFFSET ?",
                            arguments: [stream.name, stream.count - maxEvents - 1]
                        ) ?? 0
                }
                if let maxAge = limits.maxAge {
                    // Commit times never decrease along ids: everything up to this cursor is older than the horizon.
                    let horizon = Timestamp(microseconds: now.microseconds - maxAge.microseconds)
                    cutoff = max(cutoff, try Self.cursor(since: horizon, db))
                }
                return cutoff
            }
            if cutoff > 0 { cutoffs.append((stream.name, cutoff)) }
        }
        return cutoffs
    }

    /// Keeps the policy last applied in `log_settings`, written only when it changes.
    private func recordRetention(_ policy: RetentionPolicy) async throws {
        let text = policy.description
        try await pool.write { db in
            let current = try String.fetchOne(db, sql: "SELECT value FROM log_settings WHERE key = 'retention'")
            guard current != text else { return }
            try db.execute(sql: "INSERT OR REPLACE INTO log_settings (key, value) VALUES ('retention', ?)", arguments: [text])
        }
    }

    /// The retention policy last applied to this log by the server or `rewind prune`, as its description.
    public func recordedRetention() async throws -> String? {
        try await pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM log_settings WHERE key = 'retention'") }
    }

    /// Forgets idempotency keys older than the dedupe window.
    public func expireIdempotencyKeys(now: Timestamp = .now()) async throws -> Int {
        let horizon = now.microseconds - configuration.idempotencyWindow.microseconds
        return try await pool.write { db in
            try db.execute(sql: "DELETE FROM idempotency_keys WHERE time < ?", arguments: [horizon])
            return db.changesCount
        }
    }
}
