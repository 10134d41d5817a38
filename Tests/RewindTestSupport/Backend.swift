public import Foundation
import Logging
public import PostgresNIO
public import Testing

/// The store a parameterized test runs on. Suites over `EventStore` behaviour (the store tests, the server suites)
/// take `Backend.all` as their arguments, so the same assertions hold on both backends.
public enum Backend: String, Sendable, CaseIterable, CustomTestStringConvertible {
    case sqlite
    case postgres

    public var testDescription: String { rawValue }

    /// The backends a parameterized test runs on: PostgreSQL only when `REWIND_TEST_POSTGRES_URL` names a cluster.
    public static let all: [Backend] = PostgresTestCluster.url == nil ? [.sqlite] : allCases
}

/// The PostgreSQL cluster the `.postgres` cases run on: `REWIND_TEST_POSTGRES_URL`, as
/// `scripts/postgres-cluster.sh start DIR` prints it. Its role may create databases; each test makes its own and
/// drops it afterwards.
public enum PostgresTestCluster {
    public static let url: String? = ProcessInfo.processInfo.environment["REWIND_TEST_POSTGRES_URL"]
    public static let unavailable =
        "REWIND_TEST_POSTGRES_URL is not set: run scripts/postgres-cluster.sh start DIR and export the URL it prints"

    /// The cluster's URL, parsed; fails when the variable is unset or not a URL.
    public static func components() throws -> URLComponents {
        guard let url, let parts = URLComponents(string: url), parts.host != nil, parts.user != nil else {
            throw PostgresTestClusterError(description: unavailable)
        }
        return parts
    }

    /// The database the cluster's URL names (where new databases are created from).
    public static func baseDatabase() throws -> String { String(try components().path.dropFirst()) }

    /// A direct connection to `database` as the cluster's role, for setting up and inspecting.
    public static func connect(database: String) async throws -> PostgresConnection {
        let parts = try components()
        var configuration = PostgresConnection.Configuration(
            host: parts.host!,
            port: parts.port ?? 5432,
            username: parts.user!,
            password: parts.password,
            database: database,
            tls: .disable
        )
        configuration.options.connectTimeout = .seconds(10)
        return try await PostgresConnection.connect(configuration: configuration, id: 1, logger: quietLogger)
    }

    /// Makes a fresh database owned by the cluster's role (named `prefix` and a random suffix), runs `body` with its
    /// URL (`sslmode=disable`) and drops it, also when `body` throws.
    public static func withDatabase<T>(prefix: String = "rewind_test", _ body: (_ url: String) async throws -> T) async throws -> T {
        var parts = try components()
        let admin = try await connect(database: try baseDatabase())
        let name = prefix + "_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        do {
            try await admin.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: quietLogger)
        } catch {
            try? await admin.close()
            throw error
        }
        parts.path = "/" + name
        parts.query = "sslmode=disable"
        func drop() async {
            _ = try? await admin.query(PostgresQuery(unsafeSQL: "DROP DATABASE \(name) WITH (FORCE)"), logger: quietLogger)
            try? await admin.close()
        }
        do {
            let result = try await body(parts.string!)
            await drop()
            return result
        } catch {
            await drop()
            throw error
        }
    }

    static let quietLogger: Logger = {
        var logger = Logger(label: "rewind-test-postgres")
        logger.logLevel = .critical
        return logger
    }()
}

/// The cluster the tests were pointed at cannot be used.
public struct PostgresTestClusterError: Error, CustomStringConvertible {
    public let description: String
}

/// A test's own failure with a message, for conditions `#expect` cannot state.
public struct TestFailure: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension Trait where Self == ConditionTrait {
    /// Runs a suite or test only when `REWIND_TEST_POSTGRES_URL` names a cluster; without one it is skipped with a
    /// note saying how to start one, and `consequence` (what the skip leaves untested) when given.
    public static func needsPostgres(_ consequence: String? = nil) -> Self {
        let note = [PostgresTestCluster.unavailable, consequence].compactMap { $0 }.joined(separator: "; ")
        return .enabled(if: PostgresTestCluster.url != nil, Comment(rawValue: note))
    }
}
