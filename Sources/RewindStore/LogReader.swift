import Foundation
internal import GRDB
import RewindCore

/// The SQLite log as the admin commands read it: a read-only connection to the file, safe while a server writes
/// (WAL). It never takes the write lock and never migrates. Every call reads one consistent snapshot.
public final class LogReader: LogCatalog {
    public let path: String
    let queue: DatabaseQueue

    public var location: String { path }

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

    /// Nothing to let go of: the connection closes with the reader.
    public func close() async {}

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

    /// An online, consistent copy of the log at `destination` (which must not exist), through SQLite's backup API
    /// from one read snapshot: writers keep going, and the copy holds every event committed before it started.
    public func backup(to destination: String) throws {
        guard !FileManager.default.fileExists(atPath: destination) else { throw AdminError("\(destination) already exists") }
        do {
            let target = try DatabaseQueue(path: destination)
            try queue.backup(to: target)
            try target.writeWithoutTransaction { db in
                _ = try String.fetchOne(db, sql: "PRAGMA journal_mode = WAL")
                try db.execute(sql: "PRAGMA wal_checkpoint(TRUNCATE)")
            }
            try target.close()
        } catch let error as DatabaseError {
            throw AdminError("backup to \(destination) failed: \(error.message ?? error.description)")
        }
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
