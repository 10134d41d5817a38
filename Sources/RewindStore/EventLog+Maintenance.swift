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
            try db.execute(sql: "DELETE FROM events WHERE stream = ?", arguments: [name])
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
    /// reused.
    public func prune(_ policy: RetentionPolicy, now: Timestamp = .now(), chunk: Int = 10_000) async throws -> PruneReport {
        var report = PruneReport()
        guard !policy.isUnlimited else { return report }
        let streams = try await pool.read { db in
            try Row.fetchAll(db, sql: "SELECT name, count FROM streams WHERE deleted_at IS NULL AND count > 0").map {
                (name: $0[0] as String, count: $0[1] as Int64)
            }
        }
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
            guard cutoff > 0 else { continue }
            while true {
                let removed: (count: Int64, bytes: Int64, last: Int64) = try await pool.write { db in
                    let row = try Row.fetchOne(
                        db,
                        sql: """
                            SELECT count(*), coalesce(sum(length(CAST(data AS BLOB))), 0), coalesce(max(id), 0) FROM (
                                SELECT id, data FROM events WHERE stream = ? AND id <= ? ORDER BY id LIMIT ?)
                            """,
                        arguments: [stream.name, cutoff, chunk]
                    )!
                    let (count, bytes, last): (Int64, Int64, Int64) = (row[0], row[1], row[2])
                    guard count > 0 else { return (0, 0, 0) }
                    try db.execute(sql: "DELETE FROM events WHERE stream = ? AND id <= ?", arguments: [stream.name, last])
                    try db.execute(
                        sql: """
                            UPDATE streams SET count = count - ?, bytes = bytes - ?, pruned_through = max(pruned_through, ?),
                                first_id = coalesce((SELECT min(id) FROM events WHERE stream = ?), 0)
                            WHERE name = ?
                            """,
                        arguments: [count, bytes, last, stream.name, stream.name]
                    )
                    return (count, bytes, last)
                }
                guard removed.count > 0 else { break }
                report.events += removed.count
                report.bytes += removed.bytes
                report.streams[stream.name] = removed.last
                if removed.count < chunk { break }
            }
        }
        return report
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
