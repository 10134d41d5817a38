internal import Foundation
internal import GRDB
internal import GRDBSQLite
public import RewindStore

/// What `rewind verify` found.
public struct VerifyReport: Sendable {
    /// Events whose hash was recomputed and matched, up to the first failure.
    public var verified: Int64 = 0
    /// Checkpoints the chain passed through (runs of pruned or deleted events).
    public var checkpoints: Int = 0
    /// The hash of the last event or checkpoint checked: what the next event will chain from.
    public var tip: [UInt8] = ChainHash.genesis
    /// `PRAGMA integrity_check`'s lines; `["ok"]` for a sound file.
    public var integrity: [String] = []
    /// The first event that does not match, if any.
    public var failure: ChainFailure?

    public var passed: Bool { failure == nil && integrity == ["ok"] }
}

/// The first break in the audit chain: which event and what about it does not match.
public struct ChainFailure: Sendable, Equatable, CustomStringConvertible {
    /// The event at which the chain breaks; for events missing at the end of the log, the first missing id.
    public var id: Int64
    /// Its stream, when the event is there.
    public var stream: String?
    public var problem: String

    public var description: String {
        "event \(id)" + (stream.map { " (stream \($0))" } ?? "") + ": " + problem
    }
}

extension LogReader {
    /// Recomputes the audit chain over the whole log, in id order, through the checkpoints that removals left, and
    /// runs SQLite's integrity check; stops at the first event that does not match. All from one snapshot, so a
    /// server may keep appending meanwhile.
    /// - Parameters:
    ///   - integrity: `full` for `PRAGMA integrity_check`, `quick` for `quick_check`, `none` to skip it.
    ///   - progress: told `(events checked, events in the snapshot)` every few thousand events.
    public func verify(integrity: IntegrityCheck = .full, progress: (Int64, Int64) -> Void = { _, _ in }) throws -> VerifyReport {
        try read { db in
            var report = VerifyReport()
            guard try hasChain(db) else {
                throw AdminError("\(path) predates the audit chain (schema 0003); open it once with rewind serve or rewind prune to hash it")
            }
            let total = try Int64.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0
            let head = try Self.head(db)
            let checkpoints = try Row.fetchAll(db, sql: "SELECT id, hash FROM chain_checkpoints ORDER BY id").map {
                (id: $0[0] as Int64, hash: [UInt8]($0[1] as Data))
            }
            var nextCheckpoint = 0
            var previous = ChainHash.genesis
            var previousID: Int64 = 0
            var previousTime: Int64 = .min
            let statement = try db.makeStatement(sql: "SELECT id, stream, type, time, data, hash FROM events ORDER BY id")
            let handle = statement.sqliteStatement
            defer { sqlite3_reset(handle) }
            while true {
                let code = sqlite3_step(handle)
                if code == SQLITE_DONE { break }
                guard code == SQLITE_ROW else {
                    throw AdminError("reading \(path) failed: \(String(cString: sqlite3_errmsg(db.sqliteConnection)))")
                }
                let id = sqlite3_column_int64(handle, 0)
                while nextCheckpoint < checkpoints.count, checkpoints[nextCheckpoint].id < id {
                    previous = checkpoints[nextCheckpoint].hash
                    previousID = checkpoints[nextCheckpoint].id
                    nextCheckpoint += 1
                    report.checkpoints += 1
                }
                func column(_ index: Int32) -> UnsafeRawBufferPointer {
                    let bytes =
                        sqlite3_column_type(handle, index) == SQLITE_BLOB
                        ? sqlite3_column_blob(handle, index) : UnsafeRawPointer(sqlite3_column_text(handle, index))
                    return UnsafeRawBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(handle, index)))
                }
                let time = sqlite3_column_int64(handle, 3)
                let stored = sqlite3_column_type(handle, 5) == SQLITE_NULL ? nil : [UInt8](column(5))
                let computed = ChainHash.hash(previous: previous, id: id, stream: column(1), type: column(2), time: time, data: column(4))
                if stored != computed {
                    let stream = String(decoding: column(1), as: UTF8.self)
                    let problem: String
                    if stored == nil {
                        problem = "it has no hash (written before the audit chain; a writer opening the log hashes it)"
                    } else if id != previousID + 1 {
                        let missing =
                            previousID + 1 == id - 1 ? "event \(previousID + 1) before it is" : "events \(previousID + 1)…\(id - 1) before it are"
                        problem = "\(missing) gone and no checkpoint records their removal (deleted outside Rewind)"
                    } else if time < previousTime {
                        problem = "its time is earlier than the event before it (rows reordered or time changed)"
                    } else if stored!.count != ChainHash.size {
                        problem = "its stored hash is not a SHA-256 hash"
                    } else {
                        problem =
                            "its stream, type, time or data differ from what was hashed (stored hash \(ChainHash.hex(stored!)), recomputed \(ChainHash.hex(computed)))"
                    }
                    report.failure = ChainFailure(id: id, stream: stream, problem: problem)
                    break
                }
                previous = computed
                previousID = id
                previousTime = time
                report.verified += 1
                if report.verified % 16_384 == 0 { progress(report.verified, total) }
            }
            if report.failure == nil {
                while nextCheckpoint < checkpoints.count {
                    previous = checkpoints[nextCheckpoint].hash
                    previousID = checkpoints[nextCheckpoint].id
                    nextCheckpoint += 1
                    report.checkpoints += 1
                }
                if head > previousID {
                    let missing = previousID + 1 == head ? "event \(head) is" : "events \(previousID + 1)…\(head) are"
                    report.failure = ChainFailure(
                        id: previousID + 1,
                        stream: nil,
                        problem: "\(missing) gone from the end of the log and no checkpoint records their removal (deleted outside Rewind)"
                    )
                }
            }
            report.tip = previous
            progress(report.verified, total)
            switch integrity {
            case .full: report.integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
            case .quick: report.integrity = try String.fetchAll(db, sql: "PRAGMA quick_check")
            case .none: report.integrity = ["ok"]
            }
            return report
        }
    }
}

/// How much of SQLite's own file check `verify` runs.
public enum IntegrityCheck: String, Sendable, CaseIterable {
    case full, quick, none
}
