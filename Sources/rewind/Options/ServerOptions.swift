import ArgumentParser
import Foundation
import RewindAdmin

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
