/// Runs `service` (a log's or a server's `run()`) in the background while `body` runs, then cancels it and waits
/// for it to stop, also when `body` throws: how a test holds a log the way the application's service group would.
public func whileRunning<T: Sendable>(
    _ service: @escaping @Sendable () async throws -> Void,
    _ body: () async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await service() }
        do {
            let result = try await body()
            group.cancelAll()
            do {
                try await group.waitForAll()
            } catch is CancellationError {
                // Stopped as asked.
            }
            return result
        } catch {
            group.cancelAll()
            try? await group.waitForAll()
            throw error
        }
    }
}
