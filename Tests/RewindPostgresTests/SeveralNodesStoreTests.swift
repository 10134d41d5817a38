import Foundation
import Logging
import PostgresNIO
import RewindCore
import RewindPostgres
import RewindStore
import RewindTestSupport
import Synchronization
import Testing

/// Several logs on one database, as several nodes run them: each hears the others' commits through LISTEN/NOTIFY,
/// takes turns at maintenance, and shares idempotency keys.
@Suite("Several nodes on one database", .needsPostgres())
struct SeveralNodesStoreTests {
    /// Two logs and nothing polling: only a notification can tell B of A's commit.
    @Test func aCommitReachesTheOtherNodeThroughItsNotification() async throws {
        try await withTwoNodes { _, a, b in
            var slowest = Duration.zero
            for round in 0..<20 {
                let started = ContinuousClock.now
                let result = try await a.append(request("s", ["e\(round)", "f\(round)"]))
                try await waitUntil("B to see head \(result.lastID)", within: .seconds(2)) { b.commits.head >= result.lastID }
                slowest = max(slowest, ContinuousClock.now - started)
            }
            // Without the notification B would never see these (nothing polls here); with it, a commit and
            // one catch-up on loopback take a few milliseconds.
            #expect(slowest < .milliseconds(500), "slowest commit-to-seen: \(slowest)")
        }
    }

    /// A notification sent while B's listening connection is down is lost: B's listener reconnects by itself and
    /// reads the head after listening again, so B still learns of the commit without any poll.
    @Test func aListenerThatReconnectsReadsTheHeadAgain() async throws {
        try await withTwoNodes { database, a, b in
            try await waitUntil("both listen", within: .seconds(10)) { a.following == .listening && b.following == .listening }
            let before = try await a.append(request("s", ["before"]))
            try await waitUntil("B to see the first commit", within: .seconds(2)) { b.commits.head >= before.lastID }
            let terminated = try await cutListeners(database)
            #expect(terminated == 2, "both logs listen on a connection of their own")
            let during = try await a.append(request("s", ["while B's listener is down"]))
            try await waitUntil("B to hear again and see the second commit", within: .seconds(10)) {
                b.commits.head >= during.lastID && b.following == .listening
            }
            let after = try await a.append(request("s", ["after"]))
            try await waitUntil("B to see the third commit", within: .seconds(2)) { b.commits.head >= after.lastID }
        }
    }

    /// The server's window is fed every commit a node learns of: its own, and the newest of the others' through
    /// `catchUp`, in id order after the head it knew.
    @Test func catchingUpHandsTheOtherNodesEventsToTheCommitObserver() async throws {
        try await withTwoNodes { database, a, b in
            let seen = Shared<[(Int64, [Int64])]>([])
            b.onCommit { previous, events in seen.withLock { $0.append((previous, events.map(\.id))) } }
            let first = try await a.append(request("s", ["1", "2", "3"]))
            try await waitUntil("B to see A's commit", within: .seconds(2)) { b.commits.head >= first.lastID }
            let own = try await b.append(request("s", ["4"]))
            let reports = seen.withLock { $0 }
            let ids = reports.flatMap(\.1)
            #expect(ids == Array(first.firstID...own.lastID), "reports: \(reports)")
            #expect(reports.first?.0 == first.firstID - 1)
        }
    }

    /// A node that commits right after another node's commit it has not heard of yet (its listener is reconnecting)
    /// hands the other node's events to the observer before its own: the server's window stays one run of the log.
    @Test func aCommitAfterUnheardCommitsReportsThemFirst() async throws {
        try await withTwoNodes { database, a, b in
            let seen = Shared<[(Int64, [Int64])]>([])
            b.onCommit { previous, events in seen.withLock { $0.append((previous, events.map(\.id))) } }
            let start = try await b.append(request("s", ["0"]))
            // B's listener is cut, and reconnects only after a pause: A's commit reaches B through B's own.
            try await cutListeners(database)
            let others = try await a.append(request("s", ["1", "2"]))
            let own = try await b.append(request("s", ["3"]))
            let reports = seen.withLock { $0 }
            #expect(reports.flatMap(\.1) == Array(start.firstID...own.lastID), "reports: \(reports)")
            #expect(reports.last.map { $0.0 } == others.lastID)
        }
    }

    /// One node at a time holds a name: the other is told to skip, then gets its turn.
    @Test func exclusiveWorkRunsOnOneNodeAtATime() async throws {
        try await withDatabase { database in
            let configuration = try database.configuration()
            try await withLog(configuration) { a in
                try await withLog(configuration) { b in
                    let holding = Shared(false)
                    let release = Shared(false)
                    let first = Task {
                        try await a.exclusively("maintenance") {
                            holding.withLock { $0 = true }
                            while !release.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(10)) }
                            return "a"
                        }
                    }
                    try await waitUntil("A to hold the lock", within: .seconds(5)) { holding.withLock { $0 } }
                    #expect(try await b.exclusively("maintenance") { "b" } == nil, "B ran while A held the lock")
                    #expect(try await b.exclusively("something else") { "b" } == "b", "another name is another lock")
                    release.withLock { $0 = true }
                    #expect(try await first.value == "a")
                    #expect(try await b.exclusively("maintenance") { "b" } == "b", "B's turn once A is done")
                }
            }
        }
    }

    /// The same publish sent to two nodes at once, with one key: appended once, and both answers name the same ids.
    @Test func concurrentDuplicatesOnTwoNodesAppendOnce() async throws {
        try await withDatabase { database in
            let configuration = try database.configuration()
            try await withLog(configuration) { a in
                try await withLog(configuration) { b in
                    for round in 0..<20 {
                        let payload = try request("orders", ["o\(round)", "p\(round)"], key: "key-\(round)")
                        async let onA = a.append(payload)
                        async let onB = b.append(payload)
                        let (first, second) = try await (onA, onB)
                        #expect(first.firstID == second.firstID && first.lastID == second.lastID, "round \(round)")
                        #expect(first.replayed != second.replayed, "round \(round): exactly one answer is a replay")
                    }
                    let stored = try await database.query("SELECT count(*), count(DISTINCT key) FROM events", as: (Int64, Int64).self)
                    #expect(stored.first?.0 == 40 && stored.first?.1 == 20)
                }
            }
        }
    }
}

/// Two logs on one fresh database, A and B, as two nodes run them, handed to `body` once B listens for the others'
/// commits.
private func withTwoNodes(
    _ body: @escaping @Sendable (TemporaryDatabase, PostgresEventLog, PostgresEventLog) async throws -> Void
) async throws {
    try await withDatabase { database in
        let configuration = try database.configuration()
        try await withLog(configuration) { a in
            try await withLog(configuration) { b in
                try await waitUntil("B listens", within: .seconds(10)) { b.following == .listening }
                try await body(database, a, b)
            }
        }
    }
}

/// Ends every log's listening connection on `database`, as a network failure would; returns how many there were.
@discardableResult
private func cutListeners(_ database: TemporaryDatabase) async throws -> Int {
    try await database.query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'rewind-listener' AND datname = current_database()",
        as: Bool.self
    ).count
}

/// Polls `condition` every 5 ms until it holds; fails the test after `within`.
func waitUntil(_ what: String, within: Duration, _ condition: @Sendable () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + within
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(5))
    }
    if try await condition() { return }
    throw WaitFailure(description: "\(what) did not happen within \(within)")
}

struct WaitFailure: Error, CustomStringConvertible {
    var description: String
}
