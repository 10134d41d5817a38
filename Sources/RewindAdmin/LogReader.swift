public import Foundation
internal import GRDB
public import RewindCore

/// A read-only connection to a log file, for the commands that only read: safe while a server writes (WAL), it
/// never takes the write lock and never migrates. Every call reads one consistent snapshot.
public final class LogReader: Sendable {
    public let path: String
    let queue: DatabaseQueue

    public init(path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw AdminError("no database at \(path)") }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        configuration.label = "rewind-admin"
        do {
            queue = try DatabaseQueue(path: path, configuration: configuration)
            let tables = try queue.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'") }
            guard tables.contains("events"), tables.contains("streams") else {
                throw AdminError("\(path) is not a Rewind log (no events table)")
            }
        } catch let error as DatabaseError {
            throw AdminError("cannot open \(path): \(error.message ?? error.description)")
        }
        self.path = path
    }

    /// Runs `body` in one read transaction, turning SQLite errors into one-line admin errors.
    func read<T>(_ body: (Database) throws -> T) throws -> T {
        do {
            return try queue.read(body)
        } catch let error as DatabaseError {
            throw AdminError("reading \(path) failed: \(error.message ?? error.description)")
        }
    }

    /// Whether the file has the audit chain's schema (migration 0003).
    func hasChain(_ db: Database) throws -> Bool {
        try db.columns(in: "events").contains { $0.name == "hash" }
    }
}

extension LogReader {
    /// The last id ever given out (0 for an empty log).
    static func head(_ db: Database) throws -> Int64 {
        try Int64.fetchOne(db, sql: "SELECT seq FROM sqlite_sequence WHERE name = 'events'") ?? 0
    }

    /// The id of the last event committed before `time`: a read that starts after it begins at `time`. Binary
    /// search over ids, since commit times never decrease along ids (the writer keeps them so).
    static func lastID(before time: Timestamp, _ db: Database) throws -> Int64 {
        let probe = try db.cachedStatement(sql: "SELECT id, time FROM events WHERE id >= ? ORDER BY id LIMIT 1")
        var low: Int64 = 0
        var high = try Int64.fetchOne(db, sql: "SELECT max(id) FROM events") ?? 0
        // Invariant: every event with id <= low is earlier than `time`; every event with id > high is not.
        while low < high {
            let middle = low + (high - low + 1) / 2
            guard let row = try Row.fetchOne(probe, arguments: [middle]) else { break }
            if (row[1] as Int64) < time.microseconds {
                low = row[0]
            } else {
                high = middle - 1
            }
        }
        return low
    }
}
