import ArgumentParser
import Foundation
import RewindAdmin

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
