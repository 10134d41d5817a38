import Foundation
import Logging
import PostgresNIO
import RewindCore
import RewindPostgres
import RewindStore
import RewindTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Settings parsed from URLs: no server needed.
@Suite("PostgreSQL configuration")
struct PostgresConfigurationTests {
    @Test func aURLGivesEverySetting() throws {
        let configuration = try PostgresStoreConfiguration(
            url: "postgresql://app:s3cret%40x@db.example:6543/events?sslmode=require&connect_timeout=3",
            environment: [:]
        )
        #expect(configuration.user == "app")
        #expect(configuration.host == "db.example")
        #expect(configuration.port == 6543)
        #expect(configuration.database == "events")
        #expect(configuration.sslMode == .require)
        #expect(configuration.timeout == .seconds(3))
        #expect(configuration.hasPassword)
        let defaults = try PostgresStoreConfiguration(url: "postgres://app@localhost/events", environment: [:])
        #expect(defaults.port == 5432)
        #expect(defaults.sslMode == .prefer)
        #expect(!defaults.hasPassword)
    }

    /// The password shows in no description, debug description or dump of the configuration.
    @Test func thePasswordNeverShows() throws {
        let password = "pw-\(UUID().uuidString)"
        let configuration = try PostgresStoreConfiguration(url: "postgres://app:\(password)@localhost:5432/events", environment: [:])
        var dumped = ""
        dump(configuration, to: &dumped)
        for text in ["\(configuration)", String(reflecting: configuration), dumped] {
            #expect(!text.contains(password), "\(text)")
        }
        #expect("\(configuration)" == "postgres://app@localhost:5432/events?sslmode=prefer")
    }

    /// The password comes from the URL, else PGPASSWORD, else a password file (URL parameter or PGPASSFILE).
    @Test func thePasswordComesFromTheURLTheEnvironmentOrAFile() throws {
        #expect(try PostgresStoreConfiguration(url: "postgres://app@h/d", environment: ["PGPASSWORD": "p"]).hasPassword)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rewind-passfile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let pgpass = directory.appendingPathComponent("pgpass").path
        try "# comment\nother:5432:*:app:nope\nh:5432:d:app:right\\:one\n".write(toFile: pgpass, atomically: true, encoding: .utf8)
        #expect(try PostgresStoreConfiguration(url: "postgres://app@h/d?passfile=\(pgpass)", environment: [:]).hasPassword)
        #expect(try PostgresStoreConfiguration(url: "postgres://app@h/d", environment: ["PGPASSFILE": pgpass]).hasPassword)
        #expect(!(try PostgresStoreConfiguration(url: "postgres://app@h/other", environment: ["PGPASSFILE": pgpass]).hasPassword))
        let secret = directory.appendingPathComponent("secret").path
        try "only-the-password\n".write(toFile: secret, atomically: true, encoding: .utf8)
        #expect(try PostgresStoreConfiguration(url: "postgres://app@h/d?passfile=\(secret)", environment: [:]).hasPassword)
        #expect(throws: PostgresConfigurationError.self) {
            _ = try PostgresStoreConfiguration(url: "postgres://app@h/d?passfile=\(directory.path)/missing", environment: [:])
        }
    }

    /// Every malformed URL is refused with one line naming what is wrong, without the password.
    @Test(arguments: [
        ("mysql://app:hunter2@h/d", "postgres://"),
        ("postgres://app:hunter2@/d", "no host"),
        ("postgres://:hunter2@h/d", "no user"),
        ("postgres://app:hunter2@h", "no database"),
        ("postgres://app:hunter2@h:99999/d", "port"),
        ("postgres://app:hunter2@h/d?sslmode=sometimes", "sslmode=sometimes"),
        ("postgres://app:hunter2@h/d?pool=3", "parameter pool"),
        ("postgres://app:hunter2@h/d?connect_timeout=soon", "connect_timeout"),
    ])
    func malformedURLsAreRefusedClearly(url: String, named: String) {
        #expect {
            _ = try PostgresStoreConfiguration(url: url, environment: [:])
        } throws: { error in
            let text = "\(error)"
            return error is PostgresConfigurationError && text.contains(named) && !text.contains("hunter2") && !text.contains("\n")
        }
    }
}

@Suite(
    "PostgreSQL faults",
    .needsPostgres(),
    .serialized
)
struct PostgresFaultTests {
    /// A port nothing listens on: opening fails as unavailable within the connect timeout, not later.
    @Test func anUnreachableServerIsUnavailableQuickly() async throws {
        let port = try closedPort()
        let configuration = try PostgresStoreConfiguration(
            url: "postgres://rewind:pw@127.0.0.1:\(port)/rewind?sslmode=disable&connect_timeout=2",
            environment: [:]
        )
        let started = ContinuousClock.now
        await #expect {
            _ = try await PostgresEventLog.open(configuration: configuration, logger: quietLogger)
        } throws: { error in
            guard case .unavailable = error as? StoreError else { return false }
            return !"\(error)".contains("pw@")
        }
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    /// A wrong password is a configuration error naming the user, never showing the password.
    @Test func aWrongPasswordIsNamedWithoutThePassword() async throws {
        let wrong = "wrong-\(UUID().uuidString)"
        var parts = TestCluster.components
        parts.password = wrong
        parts.query = "sslmode=disable&connect_timeout=5"
        let configuration = try PostgresStoreConfiguration(url: parts.string!, environment: [:])
        await #expect {
            _ = try await PostgresEventLog.open(configuration: configuration, logger: quietLogger)
        } throws: { error in
            let texts = ["\(error)", String(reflecting: error)]
            return error is PostgresConfigurationError && texts.allSatisfy { !$0.contains(wrong) } && "\(error)".contains("refused user")
        }
    }

    /// `sslmode=prefer` (the default) falls back to plain TCP on a server without TLS; `require` refuses it,
    /// saying why.
    @Test func sslModesAreHonoured() async throws {
        try await withDatabase { database in
            let preferred = try PostgresStoreConfiguration(url: database.url("connect_timeout=5"), environment: [:])
            #expect(preferred.sslMode == .prefer)
            #expect(try await withLog(preferred) { log in try await log.head() } == 0)
            await #expect {
                _ = try await PostgresEventLog.open(configuration: try database.configuration("sslmode=require"), logger: quietLogger)
            } throws: { error in
                error is PostgresConfigurationError && "\(error)".contains("TLS")
            }
        }
    }

    /// Nothing the log or its driver logs, at any level, holds the password: not while opening, appending,
    /// failing to reach the database, nor for a wrong password.
    @Test func noLogLineHoldsThePassword() async throws {
        let password = try #require(TestCluster.components.password)
        let lines = Shared<[String]>([])
        var logger = Logger(label: "capture") { _ in CapturingLogHandler(lines: lines) }
        logger.logLevel = .trace
        try await withDatabase { database in
            let configuration = try database.configuration("sslmode=disable&connect_timeout=2")
            let log = try await PostgresEventLog.open(configuration: configuration, logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await log.run() }
                _ = try await log.append(try request("s", ["x"]))
                try await cutConnections(to: database.name, allow: false)
                _ = try? await log.append(try request("s", ["y"]))
                try await cutConnections(to: database.name, allow: true)
                group.cancelAll()
            }
            var wrong = URLComponents(string: database.url())!
            wrong.password = password + "-not"
            _ = try? await PostgresEventLog.open(configuration: try PostgresStoreConfiguration(url: wrong.string!, environment: [:]), logger: logger)
        }
        let captured = lines.withLock { $0 }
        #expect(captured.contains { $0.contains("opened event log") })
        #expect(captured.contains { $0.contains("commit failed") })
        #expect(captured.allSatisfy { !$0.contains(password) })
    }

    @Test func aMissingDatabaseIsNamed() async throws {
        var parts = TestCluster.components
        parts.path = "/no_such_database"
        parts.query = "sslmode=disable"
        let configuration = try PostgresStoreConfiguration(url: parts.string!, environment: [:])
        await #expect {
            _ = try await PostgresEventLog.open(configuration: configuration, logger: quietLogger)
        } throws: { error in
            error is PostgresConfigurationError && "\(error)".contains("no_such_database")
        }
    }

    /// A role that may not create tables in the database gets one line saying so (the cluster script's
    /// `rewind_guest` owns nothing).
    @Test func aRoleThatCannotCreateTablesIsTold() async throws {
        try await withDatabase { database in
            var parts = URLComponents(string: database.url())!
            parts.user = "rewind_guest"
            let configuration = try PostgresStoreConfiguration(url: parts.string!, environment: [:])
            await #expect {
                _ = try await PostgresEventLog.open(configuration: configuration, logger: quietLogger)
            } throws: { error in
                error is PostgresConfigurationError && "\(error)".contains("rewind_guest") && "\(error)".contains("owns its database")
            }
        }
    }

    /// The server stops taking connections while the log runs: appends and the readiness check answer
    /// unavailable within the timeout, nothing is half-written, and appends succeed again once it is back, with
    /// no restart of the log.
    @Test func appendsAreAnsweredWhileTheServerIsGoneAndResumeAfter() async throws {
        try await withDatabase { database in
            try await withLog(try database.configuration("sslmode=disable&connect_timeout=2")) { log in
                _ = try await log.append(try request("s", ["before"]))
                try await cutConnections(to: database.name, allow: false)
                let started = ContinuousClock.now
                await #expect {
                    _ = try await log.append(try request("s", ["during"]))
                } throws: { error in
                    guard case .unavailable = error as? StoreError else { return false }
                    return true
                }
                #expect(ContinuousClock.now - started < .seconds(6))
                await #expect(throws: StoreError.self) { try await log.checkWritable() }
                try await cutConnections(to: database.name, allow: true)
                var resumed: AppendResult?
                let deadline = ContinuousClock.now + .seconds(60)
                while resumed == nil, ContinuousClock.now < deadline {
                    resumed = try? await log.append(try request("s", ["after"]))
                    if resumed == nil { try await Task.sleep(for: .milliseconds(250)) }
                }
                let result = try #require(resumed)
                try await log.checkWritable()
                let page = try await log.read(ReadQuery(after: 0, filter: .everything, limit: 10))
                // The failed append may or may not have committed (its COMMIT's answer was lost), never in part.
                #expect(page.events.first?.data == "before")
                #expect(page.events.last?.data == "after")
                #expect(page.events.last?.id == result.lastID)
                #expect(page.events.count == 2 || page.events.count == 3)
            }
        }
    }
}

/// Stops (`allow: false`) or again allows new connections to a database, ending the existing ones.
func cutConnections(to database: String, allow: Bool) async throws {
    let admin = try await TestCluster.connect(database: TestCluster.baseDatabase)
    defer { Task { try? await admin.close() } }
    try await admin.query(PostgresQuery(unsafeSQL: "ALTER DATABASE \(database) ALLOW_CONNECTIONS \(allow)"), logger: quietLogger)
    if !allow {
        try await admin.query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = \(database) AND pid <> pg_backend_pid()",
            logger: quietLogger
        )
    }
}

/// A loopback port nothing listens on: bound, read and closed.
func closedPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Keeps every log line, with its metadata, as text.
struct CapturingLogHandler: LogHandler {
    let lines: Shared<[String]>
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(
        level: Logger.Level,
        message: Logger.Message,
        metadata: Logger.Metadata?,
        source: String,
        file: String,
        function: String,
        line: UInt
    ) {
        let all = self.metadata.merging(metadata ?? [:]) { $1 }
        lines.withLock { $0.append("\(level) \(message) \(all)") }
    }
}
