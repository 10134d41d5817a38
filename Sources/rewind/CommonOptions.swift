public import ArgumentParser
import Foundation
public import RewindAdmin
import RewindCore
import RewindPostgres
import RewindStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `--db`, defaulting from `REWIND_DB`: a SQLite file, or a PostgreSQL database by its `postgres://` or
/// `postgresql://` URL (the password from the URL, `PGPASSWORD` or a password file; never printed).
struct DatabaseOptions: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "Database file or postgres:// URL (default: $REWIND_DB or rewind.sqlite).",
            valueName: "path|url"
        )
    )
    var db: String?

    /// What to open: `--db`, else `$REWIND_DB`, else `rewind.sqlite`. Resolved here rather than as the option's
    /// initial value, so help does not print the default a second time and a `--db` given can be told apart.
    var path: String { db ?? ProcessInfo.processInfo.environment["REWIND_DB"] ?? "rewind.sqlite" }

    /// The log `path` names: a file, or a PostgreSQL database by its URL's scheme.
    var location: StoreLocation { StoreLocation(path) }

    /// The log's name for messages: the path, or the URL without its password.
    var displayName: String { location.description }
}

/// `--server` and `--token`, defaulting from `REWIND_SERVER` and `REWIND_TOKEN`.
///
/// Neither has an initial value: help would print it, and a token taken from the environment must never be shown.
struct ServerOptions: ParsableArguments {
    @Option(help: ArgumentHelp("URL of the server (default: http://127.0.0.1:8080, or $REWIND_SERVER when set).", valueName: "url"))
    var server: String?

    @Option(help: ArgumentHelp("Bearer token to send (default: $REWIND_TOKEN).", valueName: "token"))
    var token: String?

    func client() throws -> ServerClient {
        let environment = ProcessInfo.processInfo.environment
        return try ServerClient(
            server: server ?? environment["REWIND_SERVER"] ?? "http://127.0.0.1:8080",
            token: token ?? environment["REWIND_TOKEN"]
        )
    }
}

/// `--server` and `--token` of `query` and `streams`, which read the file unless `--server` names a server to read
/// through instead. `REWIND_SERVER` is not consulted: a query reads a file unless told otherwise.
struct RemoteReadOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Read through this server's HTTP API instead of a file.", valueName: "url"))
    var server: String?

    @Option(help: ArgumentHelp("Bearer token for --server (default: $REWIND_TOKEN).", valueName: "token"))
    var token: String?

    /// The client to read through, or nil to read the file; `--db` with `--server`, or `--token` without it, is
    /// refused.
    func client(database: DatabaseOptions) throws -> ServerClient? {
        guard let server else {
            if token != nil { throw UsageFailure(message: "--token goes with --server; without it the file is read") }
            return nil
        }
        if database.db != nil { throw UsageFailure(message: "give --db or --server, not both") }
        return try ServerClient(server: server, token: token ?? ProcessInfo.processInfo.environment["REWIND_TOKEN"])
    }
}

/// `--format`, with the default SPEC §4 asks for: a table on a terminal, JSON otherwise.
struct FormatOptions: ParsableArguments {
    @Option(help: "Output format: table, json, ndjson or csv (default: table on a terminal, json otherwise).")
    var format: OutputFormat?

    var resolved: OutputFormat { format ?? .automatic(isTerminal: Terminal.standardOutput) }
}

extension OutputFormat: ExpressibleByArgument {}
extension IntegrityCheck: ExpressibleByArgument {}

enum Terminal {
    static var standardOutput: Bool { isatty(STDOUT_FILENO) == 1 }
    static var standardError: Bool { isatty(STDERR_FILENO) == 1 }

    /// The terminal's width in columns, or nil when stdout is not a terminal.
    static var width: Int? {
        guard standardOutput else { return nil }
        var size = winsize()
        let code = withUnsafeMutablePointer(to: &size) { ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), $0) }
        if code == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 80
    }

    static func print(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }
}

/// A time option: RFC 3339, or a duration before now such as `2h`, `30m`, `7d`.
func parseTime(_ text: String, option: String) throws -> Timestamp {
    if let time = Timestamp(rfc3339: text) { return time }
    if let ago = DurationText.parse(text) {
        let (seconds, attoseconds) = ago.components
        return Timestamp(microseconds: Timestamp.now().microseconds - seconds * 1_000_000 - attoseconds / 1_000_000_000_000)
    }
    throw ValidationError("\(option) '\(text)' is neither an RFC 3339 time nor a duration such as 2h")
}

/// Runs `body` on a read-only view of the log `--db` names and closes it afterwards.
func withCatalog<T>(_ database: DatabaseOptions, _ body: (any LogCatalog) async throws -> T) async throws -> T {
    let catalog = try await LogAccess.catalog(database.location)
    do {
        let result = try await body(catalog)
        await catalog.close()
        return result
    } catch {
        await catalog.close()
        throw error
    }
}

/// Runs admin work, turning its errors into the one-line failures the CLI reports (exit code 1): the admin
/// commands' own, the store's (unavailable, schema too new), and PostgreSQL's (settings that cannot work, a
/// refused query), none of which carries a password.
func adminFailure(_ error: any Error) -> any Error {
    switch error {
    case let error as AdminError: return CommandFailure(message: error.description)
    case let error as StoreError: return CommandFailure(message: error.description)
    case let error as PostgresConfigurationError: return CommandFailure(message: error.description)
    case let error as PostgresQueryError: return CommandFailure(message: error.description)
    default: return error
    }
}

/// Options that do not go together, found while running: one line on stderr and exit code 2, like other usage
/// errors (a `ValidationError` would print the usage after it).
struct UsageFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}

/// A failure a command reports with one line on stderr and exit code 1.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
