import Foundation
import RewindCore
import RewindPostgres
import RewindStore
import RewindTestSupport
import Synchronization
import Testing

@Suite(
    "PostgreSQL ids in commit order",
    .needsPostgres(),
    .serialized
)
struct CommitOrderTests {
    /// Several nodes (log instances on one database) append concurrently while readers page by id from their
    /// cursor, as subscriptions do. Every reader must see every id exactly once, in increasing order: an id that
    /// became visible after a higher one would be behind a reader's cursor and never reach it.
    @Test func readersPagingByIdSeeEveryEventWhileNodesWriteConcurrently() async throws {
        try await withDatabase { database in
            let configuration = try database.configuration()
            let nodes = 4
            let writersPerNode = 6
            let requestsPerWriter = 40
            try await withLogs(configuration, count: nodes) { logs in
                let writing = Shared(true)
                let appended = Shared(0)
                let deadline = ContinuousClock.now + .seconds(90)
                let readers = try await withThrowingTaskGroup(of: [Int64]?.self) { group in
                    for node in 0..<nodes {
                        for writer in 0..<writersPerNode {
                            group.addTask {
                                for index in 0..<requestsPerWriter where ContinuousClock.now < deadline {
                                    let size = 1 + (writer + index) % 3
                                    let result = try await logs[node].append(
                                        try request("s\((writer + index) % 5)", (0..<size).map { "n\(node) w\(writer) r\(index) e\($0)" })
                                    )
                                    appended.withLock { $0 += Int(result.lastID - result.firstID + 1) }
                                }
                                return nil
                            }
                        }
                    }
                    for reader in 0..<3 {
                        group.addTask {
                            let log = logs[reader % nodes]
                            var seen: [Int64] = []
                            var cursor: Int64 = 0
                            while ContinuousClock.now < deadline {
                                let done = writing.withLock { $0 } == false
                                let page = try await log.read(ReadQuery(after: cursor, filter: .everything, limit: 7))
                                seen += page.events.map(\.id)
                                cursor = page.scannedThrough
                                if done && page.events.isEmpty && cursor >= page.head { break }
                            }
                            return seen
                        }
                    }
                    var writersLeft = nodes * writersPerNode
                    var readers: [[Int64]] = []
                    while let result = try await group.next() {
                        if let seen = result {
                            readers.append(seen)
                        } else {
                            writersLeft -= 1
                            if writersLeft == 0 { writing.withLock { $0 = false } }
                        }
                    }
                    return readers
                }
                let head = try await logs[0].head()
                let total = appended.withLock { $0 }
                #expect(head == Int64(total), "every id given is used once")
                let all = Set(Int64(1)...max(head, 1))
                for (index, seen) in readers.enumerated() {
                    let increasing = zip(seen, seen.dropFirst()).allSatisfy { $0 < $1 }
                    #expect(increasing, "reader \(index) saw ids out of order")
                    let missed = all.subtracting(seen).sorted()
                    #expect(missed.isEmpty, "reader \(index) never saw \(missed.count) ids, first \(missed.prefix(10))")
                }
                let union = readers.reduce(into: Set<Int64>()) { $0.formUnion($1) }
                #expect(union == all)
                let page = try await logs[1].read(ReadQuery(after: 0, filter: .everything, limit: total + 10))
                #expect(page.events.count == total)
                // Commit times never go backwards along ids, across nodes too.
                #expect(zip(page.events, page.events.dropFirst()).allSatisfy { $0.time <= $1.time })
                _ = try await verifyChain(database)
            }
        }
    }
}

/// Opens `count` logs on one database, as `count` nodes, and runs them for `body`.
func withLogs(
    _ configuration: PostgresStoreConfiguration,
    count: Int,
    _ body: @escaping @Sendable ([PostgresEventLog]) async throws -> Void
) async throws {
    @Sendable func nest(_ opened: [PostgresEventLog]) async throws {
        if opened.count == count { return try await body(opened) }
        try await withLog(configuration) { log in try await nest(opened + [log]) }
    }
    try await nest([])
}
