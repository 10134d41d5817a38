/// Runs `body`, then `cleanup`, whether `body` returned or threw: the `defer` an async cleanup (closing a log, stopping
/// a connection pool) cannot have.
public func withCleanup<T>(
    isolation: isolated (any Actor)? = #isolation,
    _ body: () async throws -> T,
    cleanup: () async -> Void
) async throws -> T {
    let result: T
    do {
        result = try await body()
    } catch {
        await cleanup()
        throw error
    }
    await cleanup()
    return result
}
