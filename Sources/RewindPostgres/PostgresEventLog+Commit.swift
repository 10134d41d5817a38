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

    struct KeyID: Hashable {
        var stream: String
        var key: String
    }

    static func commit(
        _ requests: [AppendRequest],
        window: Int64,
        listener: CommitListener,
        _ connection: PostgresConnection,
        _ logger: Logger
    ) async throws
        -> Committed
    {
        let (head, tip, lastTime) = try await single(
            connection.query("SELECT head, chain_tip, last_time FROM log_head FOR UPDATE", logger: logger),
            (Int64, ByteBuffer, Int64).self
        )
        let time = Timestamp(microseconds: max(Timestamp.now().microseconds, lastTime))
        var remembered: [KeyID: AppendResult] = [:]
        let keyed = requests.compactMap { request in request.idempotencyKey.map { KeyID(stream: request.stream.rawValue, key: $0) } }
        if !keyed.isEmpty {
            let rows = try await connection.query(
                """
                SELECT stream, key, first_id, last_id, time FROM idempotency_keys
                WHERE (stream, key) IN (SELECT * FROM unnest(\(keyed.map(\.stream))::text[], \(keyed.map(\.key))::text[]))
                    AND time >= \(time.microseconds - window)
                """,
                logger: logger
            )
            for try await (stream, key, first, last, at) in rows.decode((String, String, Int64, Int64, Int64).self) {
                remembered[KeyID(stream: stream, key: key)] = AppendResult(
                    stream: stream,
                    firstID: first,
                    lastID: last,
                    time: Timestamp(microseconds: at),
                    replayed: true
                )
            }
        }
        var deleted: [String: Int64] = [:]
        let names = Array(Set(requests.map(\.stream.rawValue)))
        let tombstones = try await connection.query(
            "SELECT name, deleted_at FROM streams WHERE name = ANY(\(names)) AND deleted_at IS NOT NULL",
            logger: logger
        )
        for try await (name, at) in tombstones.decode((String, Int64).self) { deleted[name] = at }

        var chain = Array(tip.readableBytesView)
        var nextID = head + 1
        var results: [Result<AppendResult, StoreError>] = []
        results.reserveCapacity(requests.count)
        var committed: [Event] = []
        var rows = EventRows()
        var keys = KeyRows()
        var touched: [String: (count: Int64, first: Int64, last: Int64, bytes: Int64)] = [:]
        for request in requests {
            let stream = request.stream.rawValue
            if let key = request.idempotencyKey, let seen = remembered[KeyID(stream: stream, key: key)] {
                results.append(.success(seen))
                continue
            }
            if let deletedAt = deleted[stream] {
                results.append(.failure(.streamDeleted(stream, at: Timestamp(microseconds: deletedAt))))
                continue
            }
            var first: Int64 = 0
            var last: Int64 = 0
            var bytes: Int64 = 0
            for event in request.events {
                chain = ChainHash.hash(
                    previous: chain,
                    id: nextID,
                    stream: stream,
                    type: event.type.rawValue,
                    time: time.microseconds,
                    data: event.data
                )
                rows.append(
                    id: nextID,
                    stream: stream,
                    type: event.type.rawValue,
                    data: event.data,
                    isJSON: event.isJSON,
                    key: request.idempotencyKey,
                    hash: chain
                )
                last = nextID
                nextID += 1
                if first == 0 { first = last }
                committed.append(
                    Event(
                        id: last,
                        stream: stream,
                        type: event.type.rawValue,
                        data: event.data,
                        isJSON: event.isJSON,
                        time: time,
                        key: request.idempotencyKey
                    )
                )
                bytes += Int64(event.data.utf8.count)
            }
            if let key = request.idempotencyKey {
                keys.append(stream: stream, key: key, first: first, last: last)
                remembered[KeyID(stream: stream, key: key)] = AppendResult(
                    stream: stream,
                    firstID: first,
                    lastID: last,
                    time: time,
                    replayed: true
                )
            }
            let count = Int64(request.events.count)
            if let seen = touched[stream] {
                touched[stream] = (seen.count + count, seen.first, last, seen.bytes + bytes)
            } else {
                touched[stream] = (count, first, last, bytes)
            }
            results.append(.success(AppendResult(stream: stream, firstID: first, lastID: last, time: time, replayed: false)))
        }
        guard !touched.isEmpty else { return Committed(results: results, previousHead: head, events: []) }
        let streams = touched.sorted { $0.key < $1.key }
        let newHead = nextID - 1
        let newTime = committed.isEmpty ? lastTime : time.microseconds
        // One statement writes the events, the keys, the stream counters and the head row, and notifies the other
        // nodes (sent by PostgreSQL at COMMIT).
        try await connection.query(
            """
            WITH new_events AS (
                INSERT INTO events (id, stream, type, data, json, time, key, hash)
                SELECT u.id, u.stream, u.type, u.data, u.json, \(time.microseconds), CASE WHEN u.keyed THEN u.key END, u.hash
                FROM unnest(\(rows.ids)::int8[], \(rows.streams)::text[], \(rows.types)::text[], \(rows.datas)::bytea[],
                    \(rows.jsons)::bool[], \(rows.keys)::text[], \(rows.keyed)::bool[], \(rows.hashes)::bytea[])
                    AS u(id, stream, type, data, json, key, keyed, hash)
            ), new_keys AS (
                INSERT INTO idempotency_keys AS i (stream, key, first_id, last_id, time)
                SELECT u.stream, u.key, u.first_id, u.last_id, \(time.microseconds)
                FROM unnest(\(keys.streams)::text[], \(keys.keys)::text[], \(keys.firsts)::int8[], \(keys.lasts)::int8[])
                    AS u(stream, key, first_id, last_id)
                ON CONFLICT (stream, key) DO UPDATE SET first_id = excluded.first_id, last_id = excluded.last_id, time = excluded.time
            ), new_counts AS (
                INSERT INTO streams AS s (name, count, first_id, last_id, last_time, bytes)
                SELECT u.name, u.count, u.first_id, u.last_id, \(time.microseconds), u.bytes
                FROM unnest(\(streams.map { $0.key })::text[], \(streams.map { $0.value.count })::int8[], \(streams.map { $0.value.first })::int8[],
                    \(streams.map { $0.value.last })::int8[], \(streams.map { $0.value.bytes })::int8[]) AS u(name, count, first_id, last_id, bytes)
                ON CONFLICT (name) DO UPDATE SET count = s.count + excluded.count, last_id = excluded.last_id,
                    last_time = excluded.last_time, bytes = s.bytes + excluded.bytes,
                    first_id = CASE WHEN s.count = 0 THEN excluded.first_id ELSE s.first_id END
            )
            UPDATE log_head SET head = \(newHead), chain_tip = \(ByteBuffer(bytes: chain)), last_time = \(newTime)
            RETURNING pg_notify(\(CommitListener.channel), \(listener.payload(head: newHead, time: time)))
            """,
            logger: logger
        )
        return Committed(results: results, previousHead: head, events: committed)
    }

    /// Columns of the events a commit inserts, bound as arrays and expanded by `unnest`: one statement for any
    /// number of events.
    private struct EventRows {
        var ids: [Int64] = []
        var streams: [String] = []
        var types: [String] = []
        var datas: [ByteBuffer] = []
        var jsons: [Bool] = []
        var keys: [String] = []
        var keyed: [Bool] = []
        var hashes: [ByteBuffer] = []

        mutating func append(id: Int64, stream: String, type: String, data: String, isJSON: Bool, key: String?, hash: [UInt8]) {
            ids.append(id)
            streams.append(stream)
            types.append(type)
            datas.append(ByteBuffer(string: data))
            jsons.append(isJSON)
            keys.append(key ?? "")
            keyed.append(key != nil)
            hashes.append(ByteBuffer(bytes: hash))
        }
    }

    private struct KeyRows {
        var streams: [String] = []
        var keys: [String] = []
        var firsts: [Int64] = []
        var lasts: [Int64] = []

        mutating func append(stream: String, key: String, first: Int64, last: Int64) {
            streams.append(stream)
            keys.append(key)
            firsts.append(first)
            lasts.append(last)
        }
    }
}
