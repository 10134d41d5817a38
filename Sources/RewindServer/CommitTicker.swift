import RewindStore
import ServiceLifecycle

/// Wakes every waiting subscriber on a fixed beat so each can send its heartbeat, from one task for all of them.
struct CommitTicker: Service {
    let hub: CommitHub
    let interval: Duration

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: max(interval, .milliseconds(10)))
                hub.tick()
            }
        }
    }
}
