/// The audit chain's check, fed the rows of a walk in id order: each event's hash must be the one its predecessor
/// (or the checkpoint removals left before it) and its own fields give. The same on every backend, so a log
/// verifies the same wherever it is stored; only the reading of rows differs.
public struct ChainAudit {
    private let checkpoints: [(id: Int64, hash: [UInt8])]
    private let head: Int64
    private var nextCheckpoint = 0
    private var previous = ChainHash.genesis
    private var previousID: Int64 = 0
    private var previousTime: Int64 = .min
    public private(set) var report = VerifyReport()

    public init(_ outline: LogOutline) {
        checkpoints = outline.checkpoints
        head = outline.head
    }

    /// Checks one event; false (and `report.failure` set) at the first that does not match.
    public mutating func check(_ row: EventRow) -> Bool {
        let id = row.id
        while nextCheckpoint < checkpoints.count, checkpoints[nextCheckpoint].id < id {
            passCheckpoint()
        }
        let stored = row.hash.map { [UInt8]($0) }
        let computed = ChainHash.hash(previous: previous, id: id, stream: row.stream, type: row.type, time: row.time, data: row.data)
        if stored != computed {
            let problem: String
            if stored == nil {
                problem = "it has no hash (written before the audit chain; a writer opening the log hashes it)"
            } else if id != previousID + 1 {
                let missing =
                    previousID + 1 == id - 1 ? "event \(previousID + 1) before it is" : "events \(previousID + 1)…\(id - 1) before it are"
                problem = "\(missing) gone and no checkpoint records their removal (deleted outside Rewind)"
            } else if row.time < previousTime {
                problem = "its time is earlier than the event before it (rows reordered or time changed)"
            } else if stored!.count != ChainHash.size {
                problem = "its stored hash is not a SHA-256 hash"
            } else {
                problem =
                    "its stream, type, time or data differ from what was hashed (stored hash \(ChainHash.hex(stored!)), recomputed \(ChainHash.hex(computed)))"
            }
            report.failure = ChainFailure(id: id, stream: String(decoding: row.stream, as: UTF8.self), problem: problem)
            return false
        }
        previous = computed
        previousID = id
        previousTime = row.time
        report.verified += 1
        return true
    }

    /// After the last event: the checkpoints after it, and whether events are missing from the end of the log.
    /// Returns the report.
    public mutating func finish() -> VerifyReport {
        if report.failure == nil {
            while nextCheckpoint < checkpoints.count { passCheckpoint() }
            if head > previousID {
                let missing = previousID + 1 == head ? "event \(head) is" : "events \(previousID + 1)…\(head) are"
                report.failure = ChainFailure(
                    id: previousID + 1,
                    stream: nil,
                    problem: "\(missing) gone from the end of the log and no checkpoint records their removal (deleted outside Rewind)"
                )
            }
        }
        report.tip = previous
        return report
    }

    private mutating func passCheckpoint() {
        previous = checkpoints[nextCheckpoint].hash
        previousID = checkpoints[nextCheckpoint].id
        nextCheckpoint += 1
        report.checkpoints += 1
    }
}

extension LogCatalog {
    /// Recomputes the audit chain over the whole log, in id order, through the checkpoints that removals left,
    /// from one snapshot (a server may keep appending meanwhile), then runs the backend's storage check; stops at
    /// the first event that does not match.
    /// - Parameters:
    ///   - integrity: SQLite's file check, `full`, `quick` or `none`; PostgreSQL has none and checks the chain alone.
    ///   - progress: told `(events checked, events in the snapshot)` every few thousand events.
    public func verify(integrity: IntegrityCheck = .full, progress: (Int64, Int64) -> Void = { _, _ in }) async throws -> VerifyReport {
        var audit: ChainAudit?
        var total: Int64 = 0
        try await walk({ outline in
            audit = ChainAudit(outline)
            total = outline.events
        }) { row in
            guard audit!.check(row) else { return false }
            if audit!.report.verified % 16_384 == 0 { progress(audit!.report.verified, total) }
            return true
        }
        guard var audit else { throw AdminError("reading \(location) failed: the walk read nothing") }
        var report = audit.finish()
        progress(report.verified, total)
        report.integrity = try await self.integrity(integrity)
        return report
    }
}
