import CoreMetrics
internal import GRDB

/// What the writer reports: appends, bytes, commits, how long they take, how many requests and events share one,
/// and why a commit failed. Made through swift-metrics, so the store knows nothing of how they are exported; the
/// server's factory gives them their help texts and buckets.
struct StoreMetrics: Sendable {
    let eventsAppended: Counter
    let bytesAppended: Counter
    let commits: Counter
    let commitDuration: Timer
    /// Publish requests per group commit.
    let commitRequests: Recorder
    /// Events per group commit.
    let commitEvents: Recorder
    let idempotentReplays: Counter
    let commitFailures: Counter
    /// `rewind_store_errors_total` by kind, each made up front so every kind reads 0 before its first failure.
    let errorsByKind: [StoreErrorKind: Counter]

    init(factory: any MetricsFactory) {
        eventsAppended = Counter(label: "rewind_events_appended_total", factory: factory)
        bytesAppended = Counter(label: "rewind_appended_bytes_total", factory: factory)
        commits = Counter(label: "rewind_commits_total", factory: factory)
        commitDuration = Timer(label: "rewind_commit_duration_seconds", factory: factory)
        commitRequests = Recorder(label: "rewind_commit_requests", aggregate: true, factory: factory)
        commitEvents = Recorder(label: "rewind_commit_events", aggregate: true, factory: factory)
        idempotentReplays = Counter(label: "rewind_idempotent_replays_total", factory: factory)
        commitFailures = Counter(label: "rewind_commit_failures_total", factory: factory)
        var errors: [StoreErrorKind: Counter] = [:]
        for kind in StoreErrorKind.allCases {
            errors[kind] = Counter(label: "rewind_store_errors_total", dimensions: [("kind", kind.rawValue)], factory: factory)
        }
        errorsByKind = errors
    }

    /// A group of `requests` publish requests holding `events` events committed.
    func committed(requests: Int, events: Int) {
        commitRequests.record(requests)
        commitEvents.record(events)
    }

    /// A group commit failed with `error`: counted once, and under its kind.
    func commitFailed(_ error: any Error) {
        commitFailures.increment()
        errorsByKind[StoreErrorKind(error)]?.increment()
    }
}

/// Why the store could not write, as far as an operator can act on it.
enum StoreErrorKind: String, CaseIterable, Sendable {
    /// No space left on the database's file system (`SQLITE_FULL`).
    case diskFull = "disk_full"
    /// The file or its directory is not writable (`SQLITE_READONLY`, `SQLITE_PERM`).
    case readOnly = "read_only"
    /// The operating system failed a read, write or open (`SQLITE_IOERR`, `SQLITE_CANTOPEN`).
    case io
    /// Another connection or process held a lock past the busy timeout (`SQLITE_BUSY`, `SQLITE_LOCKED`).
    case busy
    /// The file is damaged or not a database (`SQLITE_CORRUPT`, `SQLITE_NOTADB`).
    case corrupt
    case other

    init(_ error: any Error) {
        guard let error = error as? DatabaseError else {
            self = .other
            return
        }
        switch error.resultCode {
        case .SQLITE_FULL: self = .diskFull
        case .SQLITE_READONLY, .SQLITE_PERM: self = .readOnly
        case .SQLITE_IOERR, .SQLITE_CANTOPEN: self = .io
        case .SQLITE_BUSY, .SQLITE_LOCKED: self = .busy
        case .SQLITE_CORRUPT, .SQLITE_NOTADB: self = .corrupt
        default: self = .other
        }
    }
}

extension Timer {
    /// Records the time elapsed since `start`.
    func recordInterval(since start: ContinuousClock.Instant) {
        let (seconds, attoseconds) = (ContinuousClock.now - start).components
        recordNanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
