import Foundation
import Logging
import RewindAdmin
import RewindCore
import RewindStore
import RewindTestSupport
import Testing

/// A fresh, empty log on one backend, as the admin commands reach it: a SQLite file in a temporary directory, or a
/// PostgreSQL database of its own (dropped afterwards). `db` is what `--db` takes.
struct TestLog: Sendable {
    let backend: Backend
    let db: String
    /// The temporary directory of the test, for exports and other files.
    let directory: TemporaryDirectory

    var location: StoreLocation { StoreLocation(db) }

    /// Runs `body` on a read-only view of the log, as `query`, `verify` and `export` do.
    @discardableResult
    func read<T>(_ body: (any LogCatalog) async throws -> T) async throws -> T {
        try await LogAccess.withCatalog(location, body)
    }

    /// Runs `body` with the log open for writing, as `prune` and `import` do.
    func write<T>(_ body: (any LogMaintenance) async throws -> T) async throws -> T {
        try await LogAccess.withLog(location, create: true, body)
    }

    /// Changes the log behind Rewind's back with the database's own shell (`sqlite3`, `psql`), as someone
    /// tampering with it would.
    func tamper(_ sql: String) throws {
        switch backend {
        case .sqlite: try sqlite3(db, sql)
        case .postgres: try psql(db, sql)
        }
    }
}

/// Writes what an export has to carry: `writeRounds`, then a prune to the last `keep` events of each stream
/// (checkpoints), a stream `c` holding `deleted` and then deleted (a tombstone), and `json` on `j` under the
/// idempotency key `key-1`.
func writeExportable(_ log: any LogMaintenance, keep: Int64, deleted: String, json: [NewEvent]) async throws {
    try await writeRounds(log)
    _ = try await log.prune(RetentionPolicy(defaults: .init(maxEvents: keep)), now: .now(), chunk: 10_000)
    _ = try await append(log, "c", [deleted])
    #expect(try await log.deleteStream("c"))
    _ = try await log.append(AppendRequest(stream: try StreamName(validating: "j"), events: json, idempotencyKey: "key-1"))
}

/// Runs `body` with a fresh empty log on `backend`.
func withTestLog<T>(_ backend: Backend, _ body: (TestLog) async throws -> T) async throws -> T {
    let directory = try TemporaryDirectory()
    switch backend {
    case .sqlite:
        return try await body(TestLog(backend: .sqlite, db: directory.path("log.sqlite"), directory: directory))
    case .postgres:
        return try await PostgresTestCluster.withDatabase { url in
            try await body(TestLog(backend: .postgres, db: url, directory: directory))
        }
    }
}

/// A log on `backend` holding `knownEvents`.
func withKnownLog<T>(_ backend: Backend, _ body: (TestLog) async throws -> T) async throws -> T {
    try await withTestLog(backend) { log in
        try await log.write { try await seed($0, knownEvents) }
        return try await body(log)
    }
}

@Suite("PostgreSQL cases of the admin suites")
struct PostgresCasesOfTheAdminSuites {
    @Test(.needsPostgres("the admin suites ran on SQLite only"))
    func theAdminSuitesRanOnPostgreSQLToo() {
        #expect(Backend.all.contains(.postgres))
    }
}

/// A log file in a fresh temporary directory: real SQLite, no mock.
final class TemporaryDirectory: Sendable {
    let url: URL

    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("rewind-admin-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }

    func path(_ name: String) -> String { url.appendingPathComponent(name).path }

    deinit { try? FileManager.default.removeItem(at: url) }
}

func openLog(_ path: String) throws -> EventLog {
    var logger = Logger(label: "rewind-admin-test")
    logger.logLevel = .warning
    return try EventLog(configuration: StoreConfiguration(path: path), logger: logger)
}

/// 2026-11-21T10:00:00Z: the known events are committed a minute apart from here.
let baseTime = Timestamp(rfc3339: "2026-11-21T10:00:00Z")!

func minute(_ n: Int64) -> Timestamp { Timestamp(microseconds: baseTime.microseconds + n * 60_000_000) }

/// The known content every query test reads: eight events over four streams, JSON and text data, one with an
/// idempotency key, one with a line break and quotes.
let knownEvents: [Event] = [
    Event(id: 1, stream: "orders.eu", type: "order.created", data: #"{"user":{"id":42},"total":9.5}"#, isJSON: true, time: minute(0), key: nil),
    Event(id: 2, stream: "orders.us", type: "order.created", data: #"{"user":{"id":7},"total":3}"#, isJSON: true, time: minute(1), key: nil),
    Event(id: 3, stream: "audit", type: "message", data: "login ok", isJSON: false, time: minute(2), key: nil),
    Event(id: 4, stream: "orders.eu", type: "order.paid", data: #"{"user":{"id":42},"status":"paid"}"#, isJSON: true, time: minute(3), key: nil),
    Event(id: 5, stream: "audit", type: "message", data: "line one\nline two, with \"quotes\"", isJSON: false, time: minute(4), key: nil),
    Event(id: 6, stream: "orders.eu", type: "order.created", data: #"{"user":{"id":42},"total":12}"#, isJSON: true, time: minute(5), key: "k-6"),
    Event(id: 7, stream: "orders.us", type: "order.paid", data: #"{"user":{"id":7},"status":"paid"}"#, isJSON: true, time: minute(6), key: nil),
    Event(id: 8, stream: "chat", type: "message", data: "timeout while waiting", isJSON: false, time: minute(7), key: nil),
]

/// Writes `events` with the times given, chained as the writer would chain them.
func seed(_ log: any LogMaintenance, _ events: [Event]) async throws {
    var previous = ChainHash.genesis
    var records: [ImportRecord] = []
    for event in events {
        previous = ChainHash.hash(previous: previous, event: event)
        records.append(.event(event, hash: previous))
    }
    try await log.importRecords(records)
}

/// A log file holding `knownEvents`, closed again.
func knownLog(in directory: TemporaryDirectory, name: String = "known.sqlite") async throws -> String {
    let path = directory.path(name)
    let log = try openLog(path)
    try await seed(log, knownEvents)
    log.close()
    return path
}

/// The package's root, where `.build/debug/rewind` is.
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs the built `rewind` binary (what `swift build` made) and collects its output.
func rewind(_ arguments: [String], environment: [String: String] = [:], stdin: String? = nil) throws -> CommandResult {
    let process = Process()
    process.executableURL = packageRoot.appendingPathComponent(".build/debug/rewind")
    process.arguments = arguments
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "REWIND_DB")
    env.removeValue(forKey: "REWIND_SERVER")
    for (key, value) in environment { env[key] = value }
    process.environment = env
    // Output goes to files, so neither stream can fill a pipe and stall the child while the other is read.
    let directory = try TemporaryDirectory()
    _ = FileManager.default.createFile(atPath: directory.path("out"), contents: nil)
    _ = FileManager.default.createFile(atPath: directory.path("err"), contents: nil)
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: directory.path("out")))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: directory.path("err")))
    process.standardOutput = out
    process.standardError = err
    let input = Pipe()
    process.standardInput = input
    try process.run()
    if let stdin { input.fileHandleForWriting.write(Data(stdin.utf8)) }
    try input.fileHandleForWriting.close()
    process.waitUntilExit()
    try out.close()
    try err.close()
    return CommandResult(
        status: process.terminationStatus,
        stdout: String(decoding: FileManager.default.contents(atPath: directory.path("out")) ?? Data(), as: UTF8.self),
        stderr: String(decoding: FileManager.default.contents(atPath: directory.path("err")) ?? Data(), as: UTF8.self)
    )
}

/// Runs SQL on a file with the `sqlite3` command-line shell, as someone tampering with the log would.
func sqlite3(_ path: String, _ sql: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
    process.arguments = [path, sql]
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "sqlite3 \(sql)")
}

/// Runs SQL in a PostgreSQL database with `psql`, as someone tampering with the log would.
func psql(_ url: String, _ sql: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/psql")
    process.arguments = ["--no-psqlrc", "--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", url, "--command", sql]
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    process.waitUntilExit()
    #expect(process.terminationStatus == 0, "psql \(sql)")
}
