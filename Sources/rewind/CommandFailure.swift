import ArgumentParser
import Foundation
import RewindAdmin
import RewindCore
import RewindPostgres
import RewindStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

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
