package import RewindCore

/// The steps a store takes for retention, each one statement or transaction of its own SQL. The passes over the
/// streams built from them (which streams lose what, removing in chunks, counting for a dry run) are the same for
/// SQLite and PostgreSQL, so they are written once, here.
package protocol PrunableStore: Sendable {
    /// Keeps the policy applied in the log for `rewind stats`, written only when it changes.
    func recordRetention(_ policy: RetentionPolicy) async throws

    /// Every stream that is not deleted and holds events, by name, with how many it holds.
    func prunableStreams() async throws -> [(name: String, count: Int64)]

    /// The highest id to remove from `stream`, read in one snapshot: the higher of the id `offset` places after
    /// its oldest (when given) and the cursor of `horizon` (when given, everything up to it is older); 0 for none.
    func pruneCutoff(stream: String, offset: Int64?, horizon: Timestamp?) async throws -> Int64

    /// Removes in one transaction the oldest events of `stream` up to `cutoff`, `limit` at most, leaving the
    /// checkpoints the audit chain needs and updating the stream's counts and `pruned_through`. Returns how many
    /// went, their bytes and the highest id removed (all 0 when none).
    func removeEvents(stream: String, through cutoff: Int64, limit: Int) async throws -> (count: Int64, bytes: Int64, last: Int64)

    /// What removing every event of `stream` up to `cutoff` would take, as `removeEvents` reports it.
    func countEvents(stream: String, through cutoff: Int64) async throws -> (count: Int64, bytes: Int64, last: Int64)
}

extension PrunableStore {
    /// Removes what `policy` no longer keeps, stream by stream, oldest first, at most `chunk` events a transaction
    /// so appends never wait long, and records the policy. Telling subscribers is the caller's part.
    package func removePrunable(_ policy: RetentionPolicy, now: Timestamp, chunk: Int) async throws -> PruneReport {
        var report = PruneReport()
        guard !policy.isUnlimited else { return report }
        try await recordRetention(policy)
        for (stream, cutoff) in try await pruneCutoffs(policy, now: now) {
            while true {
                let removed = try await removeEvents(stream: stream, through: cutoff, limit: chunk)
                guard removed.count > 0 else { break }
                report.add(stream: stream, count: removed.count, bytes: removed.bytes, last: removed.last)
                if removed.count < chunk { break }
            }
        }
        return report
    }

    /// What `removePrunable` would remove now, without removing it (`rewind prune --dry-run`).
    package func countPrunable(_ policy: RetentionPolicy, now: Timestamp) async throws -> PruneReport {
        var report = PruneReport()
        guard !policy.isUnlimited else { return report }
        for (stream, cutoff) in try await pruneCutoffs(policy, now: now) {
            let counted = try await countEvents(stream: stream, through: cutoff)
            guard counted.count > 0 else { continue }
            report.add(stream: stream, count: counted.count, bytes: counted.bytes, last: counted.last)
        }
        return report
    }

    /// Per stream, the highest id the policy removes (streams that lose nothing are left out).
    private func pruneCutoffs(_ policy: RetentionPolicy, now: Timestamp) async throws -> [(stream: String, cutoff: Int64)] {
        var cutoffs: [(stream: String, cutoff: Int64)] = []
        for stream in try await prunableStreams() {
            let limits = policy.limits(for: stream.name)
            guard !limits.isUnlimited else { continue }
            let cutoff = try await pruneCutoff(
                stream: stream.name,
                offset: limits.maxEvents.flatMap { stream.count > $0 ? stream.count - $0 - 1 : nil },
                horizon: limits.maxAge.map { Timestamp(microseconds: now.microseconds - $0.microseconds) }
            )
            if cutoff > 0 { cutoffs.append((stream.name, cutoff)) }
        }
        return cutoffs
    }
}

extension PruneReport {
    /// Counts `count` events of `bytes` bytes removed from `stream`, up to id `last`.
    mutating func add(stream: String, count: Int64, bytes: Int64, last: Int64) {
        events += count
        self.bytes += bytes
        streams[stream] = last
        counts[stream, default: 0] += count
    }
}
