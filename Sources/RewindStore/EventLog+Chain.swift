internal import Foundation
internal import GRDB

extension EventLog {
    /// The hash the next appended event chains from: that of the newest event, or of the newest checkpoint when
    /// the newest events were removed, or the genesis hash for a log that never had an event.
    static func chainTip(_ db: Database) throws -> [UInt8] {
        let event = try Row.fetchOne(db.cachedStatement(sql: "SELECT id, hash FROM events ORDER BY id DESC LIMIT 1"))
        let checkpoint = try Row.fetchOne(db.cachedStatement(sql: "SELECT id, hash FROM chain_checkpoints ORDER BY id DESC LIMIT 1"))
        switch (event, checkpoint) {
        case (let event?, let checkpoint?):
            return (event[0] as Int64) > (checkpoint[0] as Int64) ? Self.hashColumn(event[1]) : Self.hashColumn(checkpoint[1])
        case (let event?, nil): return Self.hashColumn(event[1])
        case (nil, let checkpoint?): return Self.hashColumn(checkpoint[1])
        case (nil, nil): return ChainHash.genesis
        }
    }

    private static func hashColumn(_ value: DatabaseValue) -> [UInt8] {
        guard case .blob(let data) = value.storage else { return ChainHash.genesis }
        return [UInt8](data)
    }

    /// Turns on incremental vacuum in a database that has no tables yet, so space freed by pruning and deletion
    /// can be given back to the file system (`PRAGMA incremental_vacuum`). SQLite only changes this setting
    /// before the first table exists, or with a full `VACUUM`, which on an empty database costs nothing.
    static func enableIncrementalVacuumIfNew(_ pool: DatabasePool) throws {
        try pool.writeWithoutTransaction { db in
            let tables = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") ?? 0
            let mode = try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") ?? 0
            guard tables == 0, mode != 2 else { return }
            try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
            try db.execute(sql: "VACUUM")
        }
    }

    /// Hashes events written before the audit chain existed (their `hash` is NULL), in id order and in
    /// transactions of `chunk` events, chaining each from its predecessor as the writer would have. Returns how
    /// many were hashed. Runs when a writer opens the log, so a migrated log verifies like a new one.
    @discardableResult
    static func backfillChain(_ pool: DatabasePool, chunk: Int = 10_000) throws -> Int {
        var total = 0
        while true {
            let done: Int = try pool.write { db in
                guard let first = try Int64.fetchOne(db, sql: "SELECT min(id) FROM events WHERE hash IS NULL") else { return 0 }
                var previous = try chainPredecessor(of: first, db)
                let rows = try db.makeStatement(sql: "SELECT id, stream, type, time, data, hash FROM events WHERE id >= ? ORDER BY id LIMIT ?")
                var updates: [(Int64, [UInt8])] = []
                // A checkpoint between two rows (a removed run) is what the later one chains from.
                let checkpoints = try Row.fetchAll(
                    db,
                    sql: "SELECT id, hash FROM chain_checkpoints WHERE id > ? ORDER BY id",
                    arguments: [first]
                ).map { (id: $0[0] as Int64, hash: hashColumn($0[1])) }
                var nextCheckpoint = 0
                try rows.forEachRow(arguments: [first, chunk]) { row in
                    let id = row.int64(0)
                    while nextCheckpoint < checkpoints.count, checkpoints[nextCheckpoint].id < id {
                        previous = checkpoints[nextCheckpoint].hash
                        nextCheckpoint += 1
                    }
                    if !row.isNull(5) {
                        previous = row.blob(5) ?? ChainHash.genesis
                        return
                    }
                    previous = ChainHash.hash(
                        previous: previous,
                        id: id,
                        stream: row.text(1),
                        type: row.text(2),
                        time: row.int64(3),
                        data: row.text(4)
                    )
                    updates.append((id, previous))
                }
                let update = try db.cachedStatement(sql: "UPDATE events SET hash = ? WHERE id = ?")
                for (id, hash) in updates { try update.execute(arguments: [Data(hash), id]) }
                return updates.count
            }
            total += done
            if done == 0 { return total }
        }
    }

    /// The hash event `id` chains from: the nearest earlier event's or checkpoint's, or the genesis hash.
    static func chainPredecessor(of id: Int64, _ db: Database) throws -> [UInt8] {
        let event = try Row.fetchOne(db, sql: "SELECT id, hash FROM events WHERE id < ? ORDER BY id DESC LIMIT 1", arguments: [id])
        let checkpoint = try Row.fetchOne(
            db,
            sql: "SELECT id, hash FROM chain_checkpoints WHERE id < ? ORDER BY id DESC LIMIT 1",
            arguments: [id]
        )
        switch (event, checkpoint) {
        case (let event?, let checkpoint?):
            return (event[0] as Int64) > (checkpoint[0] as Int64) ? hashColumn(event[1]) : hashColumn(checkpoint[1])
        case (let event?, nil): return hashColumn(event[1])
        case (nil, let checkpoint?): return hashColumn(checkpoint[1])
        case (nil, nil): return ChainHash.genesis
        }
    }

    /// Records checkpoints before events matching `condition` (SQL over the `events` columns, e.g.
    /// `stream = ? AND id <= ?`) are deleted: every event about to go whose next event stays (or that is the
    /// newest) leaves its id and hash, what the following event chains from. Runs in the deleting transaction.
    static func recordCheckpoints(deleting condition: String, arguments: StatementArguments, _ db: Database) throws {
        try db.execute(
            sql: """
                INSERT OR REPLACE INTO chain_checkpoints (id, hash)
                SELECT d.id, d.hash FROM events AS d
                WHERE \(condition.replacingOccurrences(of: "$", with: "d.")) AND d.hash IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM events AS n
                    WHERE n.id = (SELECT min(id) FROM events WHERE id > d.id) AND \(condition.replacingOccurrences(of: "$", with: "n.")))
                """,
            arguments: arguments + arguments
        )
    }

    /// Drops checkpoints up to `through` that a later checkpoint made redundant: one with another checkpoint
    /// before the next event, since that event chains from the later one. Pruning in chunks and deleting next to
    /// earlier removals leave such checkpoints; the newest checkpoint is never dropped. Runs in the deleting
    /// transaction, after the delete.
    static func dropRedundantCheckpoints(through: Int64, _ db: Database) throws {
        try db.execute(
            sql: """
                DELETE FROM chain_checkpoints AS c WHERE c.id <= ? AND EXISTS (
                    SELECT 1 FROM chain_checkpoints AS later
                    WHERE later.id > c.id
                        AND later.id < coalesce((SELECT min(id) FROM events WHERE id > c.id), 9223372036854775807))
                """,
            arguments: [through]
        )
    }

    /// Gives pages freed by deletions back to the file system, when the database was created with incremental
    /// vacuum (every log created by this version). Older files keep their free pages for reuse.
    func reclaimSpace() async throws {
        try await queuedWriteWithoutTransaction { db in
            try db.execute(sql: "PRAGMA incremental_vacuum")
        }
    }
}
