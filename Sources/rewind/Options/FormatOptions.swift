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

/// `--format`, with the default SPEC §4 asks for: a table on a terminal, JSON otherwise.
struct FormatOptions: ParsableArguments {
    @Option(help: "Output format: table, json, ndjson or csv (default: table on a terminal, json otherwise).")
    var format: OutputFormat?

    var resolved: OutputFormat { format ?? .automatic(isTerminal: Terminal.standardOutput) }
}

extension OutputFormat: ExpressibleByArgument {}
