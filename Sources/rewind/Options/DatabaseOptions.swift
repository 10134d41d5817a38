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
