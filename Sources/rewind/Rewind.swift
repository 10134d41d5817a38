import ArgumentParser

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@main
struct Rewind: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewind",
        abstract: "A persistent event log with Server-Sent Events replay.",
        discussion: """
            Exit codes: 0 success, 1 failure (one line on stderr says why), 2 usage error.

            Environment: REWIND_DB (default --db), REWIND_SERVER (default --server of publish and tail), \
            REWIND_TOKEN (default --token).

            Examples:
              rewind serve --db /var/lib/rewind/log.sqlite
              rewind publish orders 'order 17 created' --type order.created
              rewind tail orders --from earliest
              rewind query --stream orders --since 1h
              rewind help query
            """,
        subcommands: [
            Serve.self, Publish.self, Tail.self, Query.self, Streams.self, Stats.self, Verify.self, Prune.self, Backup.self,
            Export.self, Import.self, Token.self, Bench.self,
        ]
    )

    /// Parses and runs a command with the exit codes docs/cli.md documents: 2 for usage errors (ArgumentParser's
    /// own default is 64), 1 with one line on stderr for failures.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch let failure as CommandFailure {
            Terminal.printError("rewind: \(failure.message)")
            terminate(1)
        } catch let failure as UsageFailure {
            Terminal.printError("rewind: \(failure.message)")
            terminate(2)
        } catch {
            let code = exitCode(for: error)
            if code == .validationFailure {
                Terminal.printError(fullMessage(for: error))
                terminate(2)
            }
            if code == .success || error is ExitCode {
                exit(withError: error)
            }
            Terminal.printError("rewind: \(fullMessage(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)")")
            terminate(1)
        }
    }
}

/// Ends the process with `code` (inside a command, `exit` names ArgumentParser's method).
private func terminate(_ code: Int32) -> Never {
    exit(code)
}
