internal import Foundation
package import GRDB
internal import GRDBSQLite
import RewindCore

/// The row a statement stands on, read column by column, text with the length SQLite reports.
///
/// GRDB turns SQLite text into a `String` with `String(cString:)` (in `Row` subscripts, `DatabaseValue` and
/// `String.fetchAll`), which ends at the first NUL: data holding U+0000 would come back cut. Every read of stored
/// text goes through here instead, so it comes back byte for byte whatever it holds. A `SQLiteRow` is valid only
/// inside the visit that hands it over, while the statement stands on its row.
package struct SQLiteRow {
    private let handle: SQLiteStatement

    fileprivate init(_ handle: SQLiteStatement) { self.handle = handle }

    package func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }

    package func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }

    package func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }

    package func bool(_ column: Int32) -> Bool { int64(column) != 0 }

    /// All of the column's text (or a BLOB's bytes as UTF-8); "" for NULL.
    package func text(_ column: Int32) -> String {
        // The pointer first, then the length: SQLite's documented order, so the length is that of this text.
        guard let start = sqlite3_column_text(handle, column) else { return "" }
        return String(decoding: UnsafeBufferPointer(start: start, count: Int(sqlite3_column_bytes(handle, column))), as: UTF8.self)
    }

    package func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }

    /// A BLOB's bytes; nil for any other storage class (a hash column left NULL).
    package func blob(_ column: Int32) -> [UInt8]? {
        guard sqlite3_column_type(handle, column) == SQLITE_BLOB else { return nil }
        let count = Int(sqlite3_column_bytes(handle, column))
        guard count > 0, let start = sqlite3_column_blob(handle, column) else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: start, count: count))
    }

    /// Text as a statement argument that keeps every byte, for a placeholder written `CAST(? AS TEXT)`.
    ///
    /// GRDB binds a `String` as a C string (`sqlite3_bind_text` with length -1), which ends at the first NUL; its
    /// UTF-8 bytes bound as a BLOB and cast back to TEXT by SQLite arrive whole. Empty text stays text: an empty
    /// BLOB has no bytes to point at and would be bound as NULL.
    package static func textArgument(_ text: String?) -> DatabaseValue {
        guard let text else { return .null }
        return text.isEmpty ? "".databaseValue : Data(text.utf8).databaseValue
    }
}

extension Statement {
    /// Runs the statement and hands each result row to `visit`, in order.
    package func forEachRow(arguments: StatementArguments = [], _ visit: (SQLiteRow) throws -> Void) throws {
        // GRDB's cursor steps the statement (and turns failures into `DatabaseError`); the row is read from the
        // statement itself, never from GRDB's copy of it.
        let rows = try Row.fetchCursor(self, arguments: arguments)
        while try rows.next() != nil {
            try visit(SQLiteRow(sqliteStatement))
        }
    }

    /// Every result row, mapped.
    package func rows<T>(arguments: StatementArguments = [], _ map: (SQLiteRow) throws -> T) throws -> [T] {
        var out: [T] = []
        try forEachRow(arguments: arguments) { out.append(try map($0)) }
        return out
    }

    /// The first result row, mapped; nil when there is none.
    package func firstRow<T>(arguments: StatementArguments = [], _ map: (SQLiteRow) throws -> T) throws -> T? {
        let rows = try Row.fetchCursor(self, arguments: arguments)
        guard try rows.next() != nil else { return nil }
        return try map(SQLiteRow(sqliteStatement))
    }
}

extension Event {
    /// The columns of the `events` table `init(row:)` reads, in its order; a statement may select more after them.
    package static let sqlColumns = "id, stream, type, data, json, time, key"

    /// The event a row selected with `Event.sqlColumns` first holds. Every read of events maps its rows here.
    package init(row: SQLiteRow) {
        self.init(
            id: row.int64(0),
            stream: row.text(1),
            type: row.text(2),
            data: row.text(3),
            isJSON: row.bool(4),
            time: Timestamp(microseconds: row.int64(5)),
            key: row.optionalText(6)
        )
    }
}

extension StreamInfo {
    /// The columns of the `streams` table `init(row:)` reads, in its order.
    static let sqlColumns = "name, count, first_id, last_id, last_time, bytes"

    init(row: SQLiteRow) {
        self.init(
            name: row.text(0),
            count: row.int64(1),
            firstID: row.int64(2),
            lastID: row.int64(3),
            lastTime: Timestamp(microseconds: row.int64(4)),
            bytes: row.int64(5)
        )
    }
}
