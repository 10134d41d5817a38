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
