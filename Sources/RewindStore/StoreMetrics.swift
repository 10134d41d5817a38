public import CoreMetrics

/// What the writer reports: appends, bytes, commits and how long they take.
struct StoreMetrics: Sendable {
    let eventsAppended: Counter
    let bytesAppended: Counter
    let commits: Counter
    let commitDuration: Timer
    let idempotentReplays: Counter
    let commitFailures: Counter

    init(factory: any MetricsFactory) {
        eventsAppended = Counter(label: "rewind_events_appended_total", factory: factory)
        bytesAppended = Counter(label: "rewind_appended_bytes_total", factory: factory)
        commits = Counter(label: "rewind_commits_total", factory: factory)
        commitDuration = Timer(label: "rewind_commit_duration_seconds", factory: factory)
        idempotentReplays = Counter(label: "rewind_idempotent_replays_total", factory: factory)
        commitFailures = Counter(label: "rewind_commit_failures_total", factory: factory)
    }
}

extension Timer {
    /// Records the time elapsed since `start`.
    func recordInterval(since start: ContinuousClock.Instant) {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
