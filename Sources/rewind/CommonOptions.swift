public import ArgumentParser
import Foundation
public import RewindAdmin
import RewindCore
import RewindStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// `--db`, defaulting from `REWIND_DB`.
struct DatabaseOptions: ParsableArguments {
    @Option(help: "SQLite database file (default: $REWIND_DB, else ./rewind.sqlite).")
    var db: String = ProcessInfo.processInfo.environment["REWIND_DB"] ?? "rewind.sqlite"
}

/// `--server` and `--token`, defaulting from `REWIND_SERVER` and `REWIND_TOKEN`.
struct ServerOptions: ParsableArguments {
    @Option(help: "Rewind server URL (default: $REWIND_SERVER, else http://127.0.0.1:8080).")
    var server: String = ProcessInfo.processInfo.environment["REWIND_SERVER"] ?? "http://127.0.0.1:8080"

    @Option(help: "Token sent as 'Authorization: Bearer' (default: $REWIND_TOKEN).")
    var token: String? = ProcessInfo.processInfo.environment["REWIND_TOKEN"]

    func client() throws -> ServerClient {
        try ServerClient(server: server, token: token)
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

/// Runs admin work, turning its errors into the one-line failures the CLI reports (exit code 1).
func adminFailure(_ error: any Error) -> any Error {
    if let error = error as? AdminError { return CommandFailure(message: error.description) }
    return error
}

/// A failure a command reports with one line on stderr and exit code 1.
struct CommandFailure: Error, CustomStringConvertible {
    var message: String
    var description: String { message }
}
