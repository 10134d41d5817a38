import Logging
import RewindStore
import ServiceLifecycle

/// Notices events that other processes (`rewind publish --db`, another writer on the same file) committed to the
/// database and wakes subscribers for them, within one `interval`.
///
/// This process's own commits are announced by its writer at once; this only looks at the head, one indexed
/// read per interval. Subscribers then read such events from the log, as the shared window never holds them.
struct ExternalCommitWatcher: Service {
    let log: EventLog
    let interval: Duration
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try await Task.sleep(for: interval)
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
    }
}
