internal import GRDB
import RewindCore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why the last commit failed, kept until a commit succeeds: `/readyz` reports it, since a full disk or a read-only
/// file still lets a transaction begin and roll back, and only a commit shows the store cannot write.
struct WriteFailure: Sendable {
    var reason: String
    var at: Timestamp
    /// The commit failed for lack of space (`SQLITE_FULL`): a probe is pointless until space is freed.
    var diskFull: Bool
}

extension EventLog {
    /// Least free space on the database's file system before a store whose commit failed for lack of space tries
    /// another write: below it, the next commit would most likely fail too.
    static let minimumFreeBytesAfterDiskFull: UInt64 = 1 << 20

    /// Throws `StoreError.unavailable` unless the store takes writes now: the file is writable, not locked by another
    /// writer, and, after a commit failed, a write commits again. `GET /readyz` answers from this.
    ///
    /// Once a commit has failed (disk full, read-only file, I/O error), the store stays unready until a commit
    /// succeeds; this check makes one small commit of its own (a row in `log_settings`) to find out, so a server
    /// that a load balancer stopped sending publishes to still becomes ready again. After a disk-full failure it
    /// first waits for free space on the file system.
    public func checkWritable() async throws {
        if writerClosed { throw StoreError.closed }
        do {
            if let failure = lastWriteFailure {
                if failure.diskFull, let free = Self.freeBytes(near: configuration.path), free < Self.minimumFreeBytesAfterDiskFull {
                    throw StoreError.unavailable(
                        "the last commit failed at \(failure.at): \(failure.reason); \(free) bytes free on the database's file system"
                    )
                }
                try await queuedWrite { db in
                    try db.execute(
                        sql: "INSERT OR REPLACE INTO log_settings (key, value) VALUES ('write_probe', ?)",
                        arguments: [Timestamp.now().description]
                    )
                }
                recordWriteSuccess()
            } else {
                try await queuedWriteWithoutTransaction { db in
                    try db.execute(sql: "BEGIN IMMEDIATE")
                    try db.execute(sql: "ROLLBACK")
                }
            }
        } catch let error as StoreError {
            throw error
        } catch {
            let failure = Self.storeError(error)
            if case StoreError.unavailable = failure, let database = error as? DatabaseError, lastWriteFailure != nil {
                recordWriteFailure(database)
            }
            throw failure
        }
    }

    /// Remembers a failed commit's reason for `checkWritable`; only failures that mean the store cannot write.
    func recordWriteFailure(_ error: DatabaseError) {
        switch error.resultCode {
        case .SQLITE_FULL, .SQLITE_READONLY, .SQLITE_IOERR, .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_CORRUPT, .SQLITE_NOTADB:
            let reason = error.message ?? "\(error.resultCode)"
            writeHealth.withLock { $0 = WriteFailure(reason: reason, at: .now(), diskFull: error.resultCode == .SQLITE_FULL) }
        default:
            // A lock held by another process: `BEGIN IMMEDIATE` in `checkWritable` sees it while it lasts.
            break
        }
    }

    func recordWriteSuccess() {
        writeHealth.withLock { $0 = nil }
    }

    var lastWriteFailure: WriteFailure? { writeHealth.withLock { $0 } }

    /// The database file's size and its WAL's.
    public func storageBytes() async -> Int64? {
        var bytes: Int64 = 0
        for path in [configuration.path, configuration.path + "-wal"] {
            var info = stat()
            if stat(path, &info) == 0 { bytes += Int64(info.st_size) }
        }
        return bytes
    }

    /// Bytes an unprivileged process can still write on the file system holding `path`, or nil if unknown.
    static func freeBytes(near path: String) -> UInt64? {
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        var stats = statvfs()
        guard statvfs(directory.isEmpty ? "/" : directory, &stats) == 0 else { return nil }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }
}
