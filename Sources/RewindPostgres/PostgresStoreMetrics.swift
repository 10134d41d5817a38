import CoreMetrics
internal import Foundation
import Logging
internal import NIOCore
internal import PostgresNIO
import RewindCore
import RewindStore
import ServiceLifecycle
import Synchronization

/// What the writer reports, under the same names as the SQLite log's.
struct PostgresStoreMetrics: Sendable {
    let eventsAppended: Counter
    let bytesAppended: Counter
    let commits: Counter
    let commitDuration: CoreMetrics.Timer
    let idempotentReplays: Counter
    let commitFailures: Counter

    init(factory: any MetricsFactory) {
        eventsAppended = Counter(label: "rewind_events_appended_total", factory: factory)
        bytesAppended = Counter(label: "rewind_appended_bytes_total", factory: factory)
        commits = Counter(label: "rewind_commits_total", factory: factory)
        commitDuration = CoreMetrics.Timer(label: "rewind_commit_duration_seconds", factory: factory)
        idempotentReplays = Counter(label: "rewind_idempotent_replays_total", factory: factory)
        commitFailures = Counter(label: "rewind_commit_failures_total", factory: factory)
    }
}

extension CoreMetrics.Timer {
    func recordInterval(since start: ContinuousClock.Instant) {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
