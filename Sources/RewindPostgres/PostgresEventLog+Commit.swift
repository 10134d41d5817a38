import CoreMetrics
internal import Foundation
import Logging
internal import NIOCore
internal import PostgresNIO
import RewindCore
import RewindStore
import ServiceLifecycle
import Synchronization

extension PostgresEventLog {
    /// What one group commit did.
    struct Committed: Sendable {
        var results: [Result<AppendResult, StoreError>]
        var previousHead: Int64
        var events: [Event]
    }

    /// Where this log's last commit left the head: what the next commit chains its hashes from, if no one else
    /// committed in between (another node, an import). Only a hint: `rewind_commit` uses the hashes sent with a
    /// commit only after checking the head row still holds this head and tip, and chains them itself otherwise.
    struct ChainHint: Sendable {
        var head: Int64
        var tip: [UInt8]
        var time: Int64
    }

    /// A log's `ChainHint`, held where the commit's task can reach it.
    final class ChainHintSlot: Sendable {
        let value = Mutex<ChainHint?>(nil)
    }

    /// One group commit: a single call of `rewind_commit` (migrations 0003 and 0004), which locks the head row, looks up
    /// idempotency keys and tombstones, gives out ids, writes the events, keys, stream counters and head, and
    /// notifies the other nodes, all on the server. Between the caller's BEGIN and COMMIT that is one round trip
    /// instead of four, with the head row locked for that one statement. The audit hashes are chained here, from
    /// where this log's last commit left the head (`hint`), before the call and outside the lock's hold:
    /// Swift's SHA-256 costs a fraction of PL/pgSQL's per event. When the hint turns out wrong (another node
    /// committed, a request is replayed or refused), the function chains the hashes itself; the result is the same
    /// chain either way. Results and the events committed are rebuilt here from the ids and times it returns.
    static func commit(
        _ prepared: PreparedCommit,
        _ connection: PostgresConnection,
        _ logger: Logger,
        handOff: @Sendable () -> Void
    ) async throws -> Committed {
        let (requests, batch, proposed, expected, hashes) = (
            prepared.requests, prepared.batch, prepared.chain.proposed, prepared.chain.expected, prepared.chain.hashes
        )
        let (window, listener, chainHint) = (prepared.window, prepared.listener, prepared.hint)
        let (previousHead, commitTime, kinds, firsts, lasts, times, newTip) = try await single(
            connection.query(
                """
                SELECT previous_head, commit_time, kinds, first_ids, last_ids, times, new_tip FROM rewind_commit(
                    \(proposed), \(window), \(batch.streams), \(batch.keys), \(batch.keyed), \(batch.counts),
                    \(batch.bytes), \(batch.eventStreams), \(batch.eventKeys), \(batch.types), \(batch.datas), \(batch.jsons), \(CommitListener.channel), \(listener.sender),
                    \(expected.head), \(ByteBuffer(bytes: expected.tip)), \(hashes))
                """,
                logger: logger
            ),
            (Int64, Int64, [Int32], [Int64], [Int64], [Int64], ByteBuffer).self
        )
        guard kinds.count == requests.count, firsts.count == requests.count, lasts.count == requests.count, times.count == requests.count
        else {
            throw PostgresCommitError("rewind_commit answered \(kinds.count) results for \(requests.count) requests")
        }
        let time = Timestamp(microseconds: commitTime)
        let newHead = max(previousHead, lasts.enumerated().filter { kinds[$0.offset] == 0 }.map(\.element).max() ?? previousHead)
        // Set before COMMIT: if the commit fails after all, the function finds the head row other than hinted and
        // chains the next commit's hashes itself.
        chainHint.value.withLock { $0 = ChainHint(head: newHead, tip: Array(newTip.readableBytesView), time: commitTime) }
        // The head row stays locked until this transaction's COMMIT: the next group may start its transaction now,
        // chaining from the hint just set, and its call waits on the lock while this COMMIT (and its fsync) runs.
        handOff()
        var results: [Result<AppendResult, StoreError>] = []
        results.reserveCapacity(requests.count)
        var committed: [Event] = []
        for (index, request) in requests.enumerated() {
            let stream = request.stream.rawValue
            switch kinds[index] {
            case 0:
                var id = firsts[index]
                for event in request.events {
                    committed.append(request.committed(event, id: id, time: time))
                    id += 1
                }
                results.append(.success(AppendResult(stream: stream, firstID: firsts[index], lastID: lasts[index], time: time, replayed: false)))
            case 1:
                let result = AppendResult(
                    stream: stream,
                    firstID: firsts[index],
                    lastID: lasts[index],
                    time: Timestamp(microseconds: times[index]),
                    replayed: true
                )
                results.append(.success(result))
            default:
                results.append(.failure(.streamDeleted(stream, at: Timestamp(microseconds: times[index]))))
            }
        }
        return Committed(results: results, previousHead: previousHead, events: committed)
    }

    /// A group commit's arguments, made before a connection is taken: the arrays and the hashes chained in Swift
    /// (one SHA-256 per event) cost milliseconds for a large batch, which need not be spent inside the transaction.
    struct PreparedCommit: Sendable {
        var requests: [AppendRequest]
        fileprivate var batch: Batch
        var chain: ChainedHashes
        var window: Int64
        var listener: CommitListener
        var hint: ChainHintSlot

        /// Events from which the arrays are built in a task of their own while this one chains the hashes: the two
        /// are independent, and a large batch's commit waits for both.
        static let sideBySideEvents = 256

        static func make(_ requests: [AppendRequest], window: Int64, listener: CommitListener, hint: ChainHintSlot) async -> PreparedCommit {
            let events = requests.reduce(0) { $0 + $1.events.count }
            let batch: Batch
            let chain: ChainedHashes
            if events >= sideBySideEvents {
                async let arrays = Batch(requests, events: events)
                chain = ChainedHashes(requests, events: events, from: hint.value.withLock { $0 })
                batch = await arrays
            } else {
                batch = Batch(requests, events: events)
                chain = ChainedHashes(requests, events: events, from: hint.value.withLock { $0 })
            }
            return PreparedCommit(requests: requests, batch: batch, chain: chain, window: window, listener: listener, hint: hint)
        }
    }

    /// The commit's proposed time, and the hashes chained in Swift from where this log's last commit left the head,
    /// with that head and tip for the function to check them against (none without a hint).
    struct ChainedHashes: Sendable {
        var proposed = Timestamp.now().microseconds
        var expected = ChainHint(head: -1, tip: [], time: 0)
        var hashes = BinaryArrayParameter(.byteaArray, of: .bytea, reservingCapacity: 0)

        init(_ requests: [AppendRequest], events: Int, from hint: ChainHint?) {
            guard let hint else { return }
            expected = hint
            proposed = max(proposed, hint.time)
            hashes = BinaryArrayParameter(.byteaArray, of: .bytea, reservingCapacity: events * 36)
            var tip = hint.tip
            var id = hint.head
            for request in requests {
                for event in request.events {
                    id += 1
                    tip = ChainHash.hash(
                        previous: tip,
                        id: id,
                        stream: request.stream.rawValue,
                        type: event.type.rawValue,
                        time: proposed,
                        data: event.data
                    )
                    hashes.append(bytes: tip)
                }
            }
        }
    }

    /// The requests of a commit as the arrays `rewind_commit` takes: one element per request, then one per event
    /// of all requests in order. Each event carries its request's stream and key (`""` when unkeyed; a key is never
    /// empty) so that the usual batch goes into the table with one INSERT from these arrays.
    fileprivate struct Batch: Sendable {
        var streams = BinaryArrayParameter(.textArray, of: .text)
        var keys = BinaryArrayParameter(.textArray, of: .text)
        var keyed = BinaryArrayParameter(.boolArray, of: .bool)
        var counts = BinaryArrayParameter(.int4Array, of: .int4)
        var bytes = BinaryArrayParameter(.int8Array, of: .int8)
        var eventStreams = BinaryArrayParameter(.textArray, of: .text)
        var eventKeys = BinaryArrayParameter(.textArray, of: .text)
        var types = BinaryArrayParameter(.textArray, of: .text)
        var datas = BinaryArrayParameter(.byteaArray, of: .bytea)
        var jsons = BinaryArrayParameter(.boolArray, of: .bool)

        init(_ requests: [AppendRequest], events: Int) {
            eventStreams = BinaryArrayParameter(.textArray, of: .text, reservingCapacity: events * 16)
            eventKeys = BinaryArrayParameter(.textArray, of: .text, reservingCapacity: events * 4)
            types = BinaryArrayParameter(.textArray, of: .text, reservingCapacity: events * 16)
            datas = BinaryArrayParameter(.byteaArray, of: .bytea, reservingCapacity: events * 64)
            jsons = BinaryArrayParameter(.boolArray, of: .bool, reservingCapacity: events * 5)
            for request in requests { append(request) }
        }

        private mutating func append(_ request: AppendRequest) {
            let stream = request.stream.rawValue
            let key = request.idempotencyKey ?? ""
            streams.append(utf8: stream)
            keys.append(utf8: key)
            keyed.append(request.idempotencyKey != nil)
            counts.append(Int32(request.events.count))
            var total: Int64 = 0
            for event in request.events {
                total += Int64(event.data.utf8.count)
                eventStreams.append(utf8: stream)
                eventKeys.append(utf8: key)
                types.append(utf8: event.type.rawValue)
                datas.append(utf8: event.data)
                jsons.append(event.isJSON)
            }
            bytes.append(total)
        }
    }
}

/// `rewind_commit` answered something other than one result per request: the database's function is not the one
/// this build installs.
struct PostgresCommitError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
