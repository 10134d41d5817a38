import Logging
import RewindStore
import ServiceLifecycle
import Synchronization

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

    /// Notices what other processes did to the log (the SQLite file, or the PostgreSQL database other nodes share)
    /// and tells subscribers, within one interval: events another
    /// writer committed (waiters are woken; they read such events from the log, as the shared window never holds
    /// them) and maintenance (`rewind prune`, a stream deleted by another server): the window is dropped through the
    /// new pruning horizon, so subscribers behind it read the log and get `rewind.gap`, and subscriptions covering
    /// a deleted stream end. This process's own commits and maintenance are announced at once. Each look is one
    /// small indexed read (the head and the one-row maintenance record), plus the new deletions when there are any.
    ///
    /// A store that is notified of other nodes' commits (PostgreSQL's LISTEN) wakes subscribers itself; the poll is
    /// then only the safety net, for what notifications do not carry (maintenance) and for a listener that has died
    /// without noticing, and runs every `whileListening`. Whenever the store is not listening, it runs every
    /// `interval`.
    static func externalChanges(
        _ log: any EventStore,
        every interval: Duration,
        whileListening: Duration,
        logger: Logger
    ) -> PeriodicService {
        // An unreachable database fails every look: one line when that starts and one when it ends, not 40 a second.
        let failing = Mutex(false)
        let lastLook = Mutex(ContinuousClock.now)
        return PeriodicService(interval: interval) {
            let now = ContinuousClock.now
            if log.following == .listening, now - lastLook.withLock({ $0 }) < whileListening - interval / 2 { return }
            lastLook.withLock { $0 = now }
            do {
                try await log.catchUp()
                let wasFailing = failing.withLock { failing in
                    let was = failing
                    failing = false
                    return was
                }
                if wasFailing {
                    logger.notice("reading the log's head and maintenance record again")
                }
            } catch is CancellationError {
                return
            } catch {
                let wasFailing = failing.withLock { failing in
                    let was = failing
                    failing = true
                    return was
                }
                if !wasFailing {
                    logger.warning("cannot read the log's head and maintenance record", metadata: ["error": "\(error)"])
                }
            }
        }
    }

    /// Applies the retention policy and forgets expired idempotency keys. What the policy removed leaves the window
    /// through the log's horizon observer, as it does when another process prunes. On a log shared by several nodes
    /// one node at a time does it (`EventStore.exclusively`): the others skip the round, and learn of what was
    /// removed through `catchUp`, so their subscribers behind the new horizon get `rewind.gap` all the same.
    static func maintenance(
        _ log: any EventStore,
        policy: RetentionPolicy,
        every interval: Duration,
        logger: Logger
    ) -> PeriodicService {
        PeriodicService(interval: interval) {
            do {
                let done = try await log.exclusively("maintenance") {
                    let report = try await log.prune(policy, now: .now(), chunk: 10_000)
                    _ = try await log.expireIdempotencyKeys(now: .now())
                    return report
                }
                guard let report = done else {
                    logger.debug("another node is running maintenance; skipped this round")
                    return
                }
                if report.events > 0 {
                    logger.info(
                        "pruned events",
                        metadata: [
                            "prune.events": "\(report.events)", "prune.bytes": "\(report.bytes)", "prune.streams": "\(report.streams.count)",
                        ]
                    )
                }
            } catch {
                logger.error("maintenance failed", metadata: ["error": "\(error)"])
            }
        }
    }
}
