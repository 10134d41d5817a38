internal import Foundation
public import Logging
internal import RewindCore
internal import RewindPostgres
public import RewindStore

/// Opens the log `--db` names for an admin command, on either backend: the only place the admin commands tell
/// SQLite from PostgreSQL. Settings that cannot work (a malformed URL, a wrong password, a missing database)
/// fail with one line naming the problem and never the password, as `rewind serve` reports them.
public enum LogAccess {
    /// A read-only view of the log for `query`, `streams`, `stats`, `verify` and `export`. Close it when done.
    public static func catalog(_ location: StoreLocation, logger: Logger = quietLogger) async throws -> any LogCatalog {
        switch location {
        case .sqlite(let path):
            return try LogReader(path: path)
        case .postgres(let url):
            return try await PostgresCatalog.open(configuration: try PostgresStoreConfiguration(url: url), logger: logger)
        }
    }

    /// Runs `body` on a read-only view of the log and closes it afterwards, also when `body` throws.
    public static func withCatalog<T>(
        _ location: StoreLocation,
        logger: Logger = quietLogger,
        _ body: (any LogCatalog) async throws -> T
    ) async throws -> T {
        let catalog = try await Self.catalog(location, logger: logger)
        return try await withCleanup {
            try await body(catalog)
        } cleanup: {
            await catalog.close()
        }
    }

    /// Runs `body` with the log opened for writing (`prune`, `import`), migrating it as a server would, and closes
    /// it afterwards. A SQLite file must exist unless `create` is set; a PostgreSQL database must exist.
    public static func withLog<T>(
        _ location: StoreLocation,
        create: Bool,
        logger: Logger = quietLogger,
        _ body: (any LogMaintenance) async throws -> T
    ) async throws -> T {
        switch location {
        case .sqlite(let path):
            if !create, !FileManager.default.fileExists(atPath: path) { throw AdminError("no database at \(path)") }
            let log = try EventLog(configuration: StoreConfiguration(path: path), logger: logger)
            defer { log.close() }
            return try await body(log)
        case .postgres(let url):
            let log = try await PostgresEventLog.open(configuration: try PostgresStoreConfiguration(url: url), logger: logger)
            // The log's connection pool runs as its service would, beside the command, and stops with it.
            return try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await log.run() }
                do {
                    let result = try await body(log)
                    group.cancelAll()
                    try? await group.waitForAll()
                    return result
                } catch {
                    group.cancelAll()
                    try? await group.waitForAll()
                    throw error
                }
            }
        }
    }

    /// Warnings and worse: an admin command's output is its result, not the log's own notices.
    public static let quietLogger: Logger = {
        var logger = Logger(label: "rewind")
        logger.logLevel = .warning
        return logger
    }()
}
