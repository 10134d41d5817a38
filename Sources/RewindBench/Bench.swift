import NIOCore
import NIOPosix

/// The load generator's benchmarks.
public enum Bench {}

extension Bench {
    /// Runs a benchmark on one event loop thread of its own, the only thread the client uses.
    static func withEventLoop<T: Sendable>(_ body: (any EventLoop) async throws -> T) async throws -> T {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let result = try await body(group.next())
            try await group.shutdownGracefully()
            return result
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Polls a condition on the event loop until it holds.
    static func waitUntil(_ loop: any EventLoop, timeout: Duration, _ what: String, _ condition: @escaping @Sendable () -> Bool) async throws {
        let start = ContinuousClock.now
        while try await !loop.submit(condition).get() {
            guard ContinuousClock.now - start < timeout else { throw BenchError("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}
