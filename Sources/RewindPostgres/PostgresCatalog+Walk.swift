internal import Foundation
public import Logging
internal import NIOCore
internal import PostgresNIO
import RewindCore
public import RewindStore

extension PostgresCatalog {
    /// Reads the whole log in id order from one snapshot, in pages of `pageSize` rows along the primary key; each
    /// row's fields are handed over as the bytes PostgreSQL sent.
    public func walk(_ begin: (LogOutline) throws -> Void, _ visit: (EventRow) throws -> Bool) async throws {
        try await read { connection, logger in
            let (head, count) = try await PostgresEventLog.single(
                connection.query("SELECT (SELECT head FROM log_head), (SELECT count(*)::int8 FROM events)", logger: logger),
                (Int64, Int64).self
            )
            var checkpoints: [(id: Int64, hash: [UInt8])] = []
            let rows = try await connection.query("SELECT id, hash FROM chain_checkpoints ORDER BY id", logger: logger)
            for try await (id, hash) in rows.decode((Int64, ByteBuffer).self) {
                checkpoints.append((id, Array(hash.readableBytesView)))
            }
            let streams = try await Self.streams(includeDeleted: true, connection, logger)
            try begin(LogOutline(head: head, events: count, checkpoints: checkpoints, streams: streams))
            var after: Int64 = 0
            while true {
                let page = try await connection.query(
                    "SELECT id, stream, type, data, json, time, key, hash FROM events WHERE id > \(after) ORDER BY id LIMIT \(pageSize)",
                    logger: logger
                )
                var read = 0
                var stopped = false
                for try await row in page {
                    read += 1
                    // After the visit asked to stop, the page is read to its end, leaving the connection ready.
                    if stopped { continue }
                    var cells = row.makeIterator()
                    let id = try cells.next()!.decode(Int64.self)
                    let stream = cells.next()!.bytes ?? ByteBuffer()
                    let type = cells.next()!.bytes ?? ByteBuffer()
                    let data = cells.next()!.bytes ?? ByteBuffer()
                    let isJSON = try cells.next()!.decode(Bool.self)
                    let time = try cells.next()!.decode(Int64.self)
                    let key = cells.next()!.bytes
                    let hash = cells.next()!.bytes
                    after = id
                    let keep = try stream.withUnsafeReadableBytes { stream in
                        try type.withUnsafeReadableBytes { type in
                            try data.withUnsafeReadableBytes { data in
                                try Self.withOptionalBytes(key) { key in
                                    try Self.withOptionalBytes(hash) { hash in
                                        try visit(
                                            EventRow(id: id, stream: stream, type: type, data: data, isJSON: isJSON, time: time, key: key, hash: hash)
                                        )
                                    }
                                }
                            }
                        }
                    }
                    if !keep { stopped = true }
                }
                if stopped || read < pageSize { return }
            }
        }
    }

    private static func withOptionalBytes<T>(_ buffer: ByteBuffer?, _ body: (UnsafeRawBufferPointer?) throws -> T) rethrows -> T {
        guard let buffer else { return try body(nil) }
        return try buffer.withUnsafeReadableBytes { try body($0) }
    }

    /// PostgreSQL offers an ordinary role no check of its pages (that needs the `amcheck` extension and
    /// `pg_amcheck`), so `verify` on PostgreSQL checks the audit chain alone: nil, whatever was asked.
    public func integrity(_ check: IntegrityCheck) async throws -> [String]? { nil }
}
