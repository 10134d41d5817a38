import Logging
import RewindStore
import ServiceLifecycle

/// Applies the retention policy and forgets expired idempotency keys, every `interval`, in the background.
struct MaintenanceService: Service {
    let log: EventLog
    let recent: RecentEvents
    let policy: RetentionPolicy
    let interval: Duration
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await runOnce()
            }
        }
    }

    func runOnce() async {
        do {
            let report = try await log.prune(policy)
            if let highest = report.streams.values.max() { recent.drop(through: highest) }
            if report.events > 0 {
                logger.info(
                    "pruned events",
                    metadata: ["prune.events": "\(report.events)", "prune.bytes": "\(report.bytes)", "prune.streams": "\(report.streams.count)"]
                )
            }
            _ = try await log.expireIdempotencyKeys()
        } catch {
            logger.error("maintenance failed", metadata: ["error": "\(error)"])
        }
    }
}
