internal import Foundation
internal import GRDB
internal import GRDBSQLite

extension LogReader {
    /// Reads the whole log in id order from one read transaction, stepping one statement over the primary key and
    /// handing each row's bytes straight from SQLite (no copy, no string).
    public func walk(_ begin: (LogOutline) throws -> Void, _ visit: (EventRow) throws -> Bool) throws {
        try read { db in
            guard try hasChain(db) else {
                throw AdminError("\(path) predates the audit chain (schema 0003); open it once with rewind serve or rewind prune to hash it")
            }
            let checkpoints = try Row.fetchAll(db, sql: "SELECT id, hash FROM chain_checkpoints ORDER BY id").map {
                (id: $0[0] as Int64, hash: [UInt8]($0[1] as Data))
            }
            try begin(
                LogOutline(
                    head: try Self.head(db),
                    events: try Int64.fetchOne(db, sql: "SELECT count(*) FROM events") ?? 0,
                    checkpoints: checkpoints,
                    streams: try Self.streams(includeDeleted: true, db)
                )
            )
            let statement = try db.makeStatement(sql: "SELECT \(StoredEvent.sqlColumns) FROM events ORDER BY id")
            let handle = statement.sqliteStatement
            defer { sqlite3_reset(handle) }
            while true {
                let code = sqlite3_step(handle)
                if code == SQLITE_DONE { break }
                guard code == SQLITE_ROW else {
                    throw AdminError("reading \(path) failed: \(String(cString: sqlite3_errmsg(db.sqliteConnection)))")
                }
                func column(_ index: Int32) -> UnsafeRawBufferPointer {
                    let bytes =
                        sqlite3_column_type(handle, index) == SQLITE_BLOB
                        ? sqlite3_column_blob(handle, index) : UnsafeRawPointer(sqlite3_column_text(handle, index))
                    return UnsafeRawBufferPointer(start: bytes, count: Int(sqlite3_column_bytes(handle, index)))
                }
                func optional(_ index: Int32) -> UnsafeRawBufferPointer? {
                    sqlite3_column_type(handle, index) == SQLITE_NULL ? nil : column(index)
                }
                // Columns of `StoredEvent.sqlColumns`: id, stream, type, data, json, time, key, hash.
                let row = EventRow(
                    id: sqlite3_column_int64(handle, 0),
                    stream: column(1),
                    type: column(2),
                    data: column(3),
                    isJSON: sqlite3_column_int64(handle, 4) != 0,
                    time: sqlite3_column_int64(handle, 5),
                    key: optional(6),
                    hash: optional(7)
                )
                guard try visit(row) else { break }
            }
        }
    }

    /// SQLite's own check of the file: `PRAGMA integrity_check` or `quick_check`; nil for `none`.
    public func integrity(_ check: IntegrityCheck) throws -> [String]? {
        try read { db in
            switch check {
            case .full: return try String.fetchAll(db, sql: "PRAGMA integrity_check")
            case .quick: return try String.fetchAll(db, sql: "PRAGMA quick_check")
            case .none: return nil
            }
        }
    }
}
