import Foundation
import Logging
import PostgresNIO
public import Testing

/// The store a test runs on, shared by the server and admin suites. The suites that concern the store run every test
/// on both; the PostgreSQL cases need the throwaway cluster of `scripts/postgres-cluster.sh`
/// (`REWIND_TEST_POSTGRES_URL`). Without it they are not made, and each suite's "PostgreSQL cases" test is reported as
/// skipped with the reason: a run on SQLite alone says so.
/// (Swift Testing has no per-argument skip, and a cancelled test case is reported as passed.)
public enum Backend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case postgres

    /// The backends a parameterized test runs on.
    public static let all: [Backend] = PostgresTestCluster.url == nil ? [.sqlite] : allCases

    public var testDescription: String { rawValue }
}

/// The PostgreSQL cluster the `.postgres` cases run on; each test gets a database of its own, dropped afterwards.
public enum PostgresTestCluster {
    public static let url: String? = ProcessInfo.processInfo.environment["REWIND_TEST_POSTGRES_URL"]
    public static let unavailable =
        "REWIND_TEST_POSTGRES_URL is not set: run scripts/postgres-cluster.sh start DIR and export the URL it prints"

    /// Makes a fresh database owned by the cluster's role, runs `body` with its URL and drops it.
    public static func withDatabase<T>(_ body: (_ url: String) async throws -> T) async throws -> T {
        guard let url, let parts = URLComponents(string: url), let host = parts.host, let user = parts.user else {
            throw TestFailure(unavailable)
        }
        var configuration = PostgresConnection.Configuration(
            host: host,
            port: parts.port ?? 5432,
            username: user,
            password: parts.password,
            database: String(parts.path.dropFirst()),
            tls: .disable
        )
        configuration.options.connectTimeout = .seconds(10)
        var logger = Logger(label: "rewind-test-postgres")
        logger.logLevel = .critical
        let admin = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        let name = "rewind_server_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        var database = parts
        database.path = "/" + name
        database.query = "sslmode=disable"
        func drop() async {
            _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(name) WITH (FORCE)"), logger: logger)
            try? await admin.close()
        }
        do {
            let result = try await body(database.string!)
            await drop()
            return result
        } catch {
            await drop()
            throw error
        }
    }
}

public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
