import Logging
import RewindStore
import ServiceLifecycle

/// Runs a chore every `interval` until graceful shutdown: the server's background work.
struct PeriodicService: Service {
    let interval: Duration
    let chore: @Sendable () async -> Void

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
                await chore()
            }
        }
    }
}

/// The server's chores.
enum BackgroundChores {
    /// Wakes every waiting subscriber on a fixed beat so each can send its heartbeat, from one task for all.
    static func heartbeat(_ hub: CommitHub, every interval: Duration) -> PeriodicService {
        PeriodicService(interval: max(interval, .milliseconds(10))) { hub.tick() }
    }

    /// Notices events that other processes (another writer on the same file) committed and wakes subscribers
    /// for them, within one interval. This process's own commits are announced by its writer at once; this only
    /// reads the head, one indexed read per interval. Subscribers read such events from the log, as the shared
    /// window never holds them.
    static func externalCommits(_ log: EventLog, every interval: Duration, logger: Logger) -> PeriodicService {
        PeriodicService(interval: interval) {
            do {
                let head = try await log.head()
                if head > log.commits.head { log.commits.publish(head: head) }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("cannot read the log's head", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Applies the retention policy (dropping what it removed from the window too) and forgets expired
    /// idempotency keys.
    static func maintenance(
        _ log: EventLog,
        recent: RecentEvents,
        policy: RetentionPolicy,
        every interval: Duration,
        logger: Logger
    ) -> PeriodicService {
        PeriodicService(interval: interval) {
            do {
                let report = try await log.prune(policy)
                if let highest = report.streams.values.max() { recent.drop(through: highest) }
                if report.events > 0 {
                    logger.info(
                        "pruned events",
                        metadata: [
                            "prune.events": "\(report.events)", "prune.bytes": "\(report.bytes)", "prune.streams": "\(report.streams.count)",
                        ]
                    )
                }
                _ = try await log.expireIdempotencyKeys()
            } catch {
                logger.error("maintenance failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
