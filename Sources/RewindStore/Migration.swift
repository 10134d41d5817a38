internal import GRDB

/// One schema step, from a numbered SQL file in `migrations/` embedded at build time.
struct Migration: Sendable {
    /// The file name without `.sql`, e.g. `0001_event_log`; recorded in the database once applied.
    var name: String
    var sql: String
}

extension Migration {
    /// Applies the embedded migrations not yet recorded in the database, in order, each in its own transaction.
    ///
    /// GRDB's `DatabaseMigrator` records what it applied in `grdb_migrations`. A database that holds migrations
    /// this build does not know was written by a newer `rewind`; opening it could misread it, so it is refused.
    static func migrate(_ writer: some DatabaseWriter) throws {
        var migrator = DatabaseMigrator()
        for migration in embedded {
            migrator.registerMigration(migration.name) { db in
                try db.execute(sql: migration.sql)
            }
        }
        if try writer.read({ db in try migrator.hasBeenSuperseded(db) }) {
            throw StoreError.schemaTooNew(known: embedded.map(\.name))
        }
        try migrator.migrate(writer)
    }
}
