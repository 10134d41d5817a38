internal import RewindCore
public import RewindStore

extension StoredEvent {
    /// The event as a table row: the columns of the JSON read API (`id`, `stream`, `type`, `data`, `time`, `key`).
    public static let columns = ["id", "stream", "type", "data", "time", "key"]

    public var cells: [Cell] {
        [
            .integer(event.id), .text(event.stream), .text(event.type), event.isJSON ? .json(event.data) : .text(event.data),
            .text(event.time.description), event.key.map(Cell.text) ?? .null,
        ]
    }
}

extension StreamSummary {
    public static let columns = ["name", "count", "first_id", "last_id", "first_time", "last_time", "bytes", "pruned_through", "deleted_at"]

    public var cells: [Cell] {
        [
            .text(name), .integer(count), firstID.map(Cell.integer) ?? .null, .integer(lastID), firstTime.map { .text($0.description) } ?? .null,
            lastTime.map { .text($0.description) } ?? .null, .integer(bytes), .integer(prunedThrough),
            deletedAt.map { .text($0.description) } ?? .null,
        ]
    }
}

extension LogStats {
    /// The summary as name/value rows, then the streams as their own table. Figures a backend does not have (the
    /// WAL and free pages on PostgreSQL) are null.
    public var summary: OutputTable {
        func time(_ value: Timestamp?) -> Cell { value.map { .text($0.description) } ?? .null }
        let live = streams.filter { $0.deletedAt == nil }
        let rows: [[Cell]] = [
            [.text("events"), .integer(events)],
            [.text("bytes"), .integer(bytes)],
            [.text("streams"), .integer(Int64(live.count))],
            [.text("deleted_streams"), .integer(Int64(streams.count - live.count))],
            [.text("first_id"), firstID.map(Cell.integer) ?? .null],
            [.text("first_time"), time(firstTime)],
            [.text("last_id"), lastID.map(Cell.integer) ?? .null],
            [.text("last_time"), time(lastTime)],
            [.text("head"), .integer(head)],
            [.text("database_bytes"), .integer(databaseBytes)],
            [.text("wal_bytes"), walBytes.map(Cell.integer) ?? .null],
            [.text("free_bytes"), freeBytes.map(Cell.integer) ?? .null],
            [.text("checkpoints"), .integer(checkpoints)],
            [.text("retention"), .text(retention ?? "none recorded")],
        ]
        return OutputTable(columns: ["field", "value"], rows: rows)
    }

    /// The whole report as one JSON object: the summary's fields plus `streams`, an array.
    public var json: String {
        var json = JSONWriter()
        json.beginObject()
        for row in summary.rows {
            json.key(row[0].text)
            switch row[1] {
            case .integer(let value): json.int(value)
            case .text(let value): json.string(value)
            case .json(let value): json.raw(value)
            case .null: json.null()
            }
        }
        json.key("streams")
        let streamsJSON = OutputTable(columns: StreamSummary.columns, rows: streams.map(\.cells)).render(.json)
        json.raw(String(streamsJSON.dropLast()))
        json.endObject()
        return String(decoding: json.bytes, as: UTF8.self)
    }
}
