import CoreMetrics
internal import Foundation
import Logging
internal import NIOCore
internal import PostgresNIO
import RewindCore
import RewindStore
import ServiceLifecycle
import Synchronization

extension PostgresEventLog {

    /// Runs `body` on a pooled connection within the timeout, mapping the driver's failures.
    func withConnection<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws -> T {
        do {
            return try await reachability.guarded(within: configuration.timeout) {
                try await withPooledConnection(client, within: configuration.timeout, leaseWithin: configuration.leaseTimeout, what) {
                    [logger] connection in try await body(connection, logger)
                }
            }
        } catch {
            throw PostgresFailures.map(error, configuration)
        }
    }

    /// Runs `body` in a writing transaction that first locks the head row, as commits do: every change to the log
    /// (appends, deletions, pruning, imports) happens one at a time, in one order, as SQLite's single writer
    /// gives it.
    func write<T: Sendable>(
        _ what: String,
        _ body: @escaping @Sendable (PostgresConnection, Logger) async throws -> T
    ) async throws -> T {
        try await withConnection(what) { connection, logger in
            try await Self.transaction(connection, logger) { connection in
                try await connection.query("SELECT 1 FROM log_head FOR UPDATE", logger: logger)
                return try await body(connection, logger)
            }
        }
    }

    static func transaction<T>(
        _ connection: PostgresConnection,
        _ logger: Logger,
        begin: PostgresQuery = "BEGIN",
        _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await connection.query(begin, logger: logger)
        do {
            let value = try await body(connection)
            try await connection.query("COMMIT", logger: logger)
            return value
        } catch {
            if !connection.isClosed, !PostgresFailures.connectionLost(error) {
                _ = try? await connection.query("ROLLBACK", logger: logger)
            }
            throw error
        }
    }

    /// A read-only transaction on one snapshot, for reads made of several statements.
    static func readOnly<T>(_ connection: PostgresConnection, _ logger: Logger, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        try await transaction(connection, logger, begin: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", body)
    }

    /// The first row of a result decoded as `type`, or nil; the rest is drained.
    static func first<each T: PostgresDecodable & Sendable>(
        _ rows: PostgresRowSequence,
        _ type: (repeat each T).Type
    ) async throws -> (
        repeat each T
    )? {
        var found: (repeat each T)?
        for try await value in rows.decode((repeat each T).self) where found == nil { found = value }
        return found
    }

    /// The one row a query always returns.
    static func single<each T: PostgresDecodable & Sendable>(
        _ rows: PostgresRowSequence,
        _ type: (repeat each T).Type
    ) async throws -> (
        repeat each T
    ) {
        guard let value = try await first(rows, type) else { throw PostgresQueryError(message: "a query returned no row", sqlState: "-----") }
        return value
    }
}
