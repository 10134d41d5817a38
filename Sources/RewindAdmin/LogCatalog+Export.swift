internal import Foundation
import RewindCore
public import RewindStore

/// The export format, one JSON object per line (NDJSON), in id order:
///
/// - an event: `{"id", "stream", "type", "data", "json", "time", "key"?, "hash"}`; `data` is always the stored
///   text as a JSON string and `json` says whether it was published as a JSON value; `hash` is hexadecimal;
/// - a checkpoint, where removed events were: `{"checkpoint": <id>, "hash": "..."}`;
/// - after the events, a stream's tombstone or pruning horizon: `{"stream_state": <name>, "deleted_at"?, "pruned_through"}`;
/// - last, `{"head": <last id ever given out>}`.
public enum ExportFormat {
    static func eventLine(_ stored: StoredEvent) -> String {
        var json = JSONWriter()
        let event = stored.event
        json.beginObject()
        json.key("id")
        json.int(event.id)
        json.key("stream")
        json.string(event.stream)
        json.key("type")
        json.string(event.type)
        json.key("data")
        json.string(event.data)
        json.key("json")
        json.bool(event.isJSON)
        json.key("time")
        json.string(event.time.description)
        if let key = event.key {
            json.key("key")
            json.string(key)
        }
        json.key("hash")
        if let hash = stored.hash { json.string(ChainHash.hex(hash)) } else { json.null() }
        json.endObject()
        return String(decoding: json.bytes, as: UTF8.self) + "\n"
    }

    static func checkpointLine(id: Int64, hash: [UInt8]) -> String {
        "{\"checkpoint\":\(id),\"hash\":\"\(ChainHash.hex(hash))\"}\n"
    }

    static func streamStateLine(_ stream: StreamSummary) -> String {
        var json = JSONWriter()
        json.beginObject()
        json.key("stream_state")
        json.string(stream.name)
        if let deleted = stream.deletedAt {
            json.key("deleted_at")
            json.string(deleted.description)
        }
        json.key("pruned_through")
        json.int(stream.prunedThrough)
        json.endObject()
        return String(decoding: json.bytes, as: UTF8.self) + "\n"
    }

    /// One line of an export as it reads: every member any record has, each optional.
    private struct Line: Decodable {
        var checkpoint: Int64?
        var head: Int64?
        var streamState: String?
        var deletedAt: String?
        var prunedThrough: Int64?
        var id: Int64?
        var stream: String?
        var type: String?
        var data: String?
        var json: Bool?
        var time: String?
        var key: String?
        var hash: String?

        enum CodingKeys: String, CodingKey {
            case checkpoint, head, id, stream, type, data, json, time, key, hash
            case streamState = "stream_state"
            case deletedAt = "deleted_at"
            case prunedThrough = "pruned_through"
        }
    }

    /// Parses one line of an export. `JSONDecoder`, not `JSONSerialization`: on Linux the latter drops a BOM that
    /// begins a string, and the event would no longer match its hash.
    static func record(_ line: Substring, number: Int) throws -> ImportRecord {
        func fail(_ problem: String) -> AdminError { AdminError("line \(number): \(problem)") }
        let fields: Line
        do {
            fields = try JSONDecoder().decode(Line.self, from: Data(line.utf8))
        } catch DecodingError.typeMismatch(let expected, let context) where !context.codingPath.isEmpty {
            let kind = expected == Bool.self ? "true or false" : expected == String.self ? "a string" : "an integer"
            throw fail("\"\(context.codingPath[0].stringValue)\" is not \(kind)")
        } catch DecodingError.dataCorrupted(let context) where !context.codingPath.isEmpty {
            throw fail("\"\(context.codingPath[0].stringValue)\" is not an integer")
        } catch {
            throw fail("not a JSON object")
        }
        func hash(_ text: String?) throws -> [UInt8] {
            guard let text, let bytes = ChainHash.bytes(hex: text) else { throw fail("\"hash\" is not 64 hexadecimal digits") }
            return bytes
        }
        func integer(_ value: Int64?, _ name: String) throws -> Int64 {
            guard let value else { throw fail("\"\(name)\" is not an integer") }
            return value
        }
        if let checkpoint = fields.checkpoint { return .checkpoint(id: checkpoint, hash: try hash(fields.hash)) }
        if let head = fields.head { return .head(head) }
        if let name = fields.streamState {
            var deletedAt: Timestamp?
            if let text = fields.deletedAt {
                guard let time = Timestamp(rfc3339: text) else { throw fail("\"deleted_at\" is not an RFC 3339 time") }
                deletedAt = time
            }
            return .streamState(name: name, deletedAt: deletedAt, prunedThrough: try integer(fields.prunedThrough, "pruned_through"))
        }
        let id = try integer(fields.id, "id")
        guard id > 0 else { throw fail("\"id\" must be at least 1") }
        guard let stream = fields.stream, (try? StreamName(validating: stream)) != nil else { throw fail("\"stream\" is not a stream name") }
        guard let type = fields.type, StreamName.isValidEventType(type) else { throw fail("\"type\" is not an event type") }
        guard let data = fields.data else { throw fail("\"data\" is not a string") }
        guard let timeText = fields.time, let time = Timestamp(rfc3339: timeText) else { throw fail("\"time\" is not an RFC 3339 time") }
        let event = Event(id: id, stream: stream, type: type, data: data, isJSON: fields.json ?? false, time: time, key: fields.key)
        return .event(event, hash: fields.hash == nil ? [] : try hash(fields.hash))
    }
}

extension LogCatalog {
    /// Writes the whole log in the export format, from one snapshot, through `write` (called with chunks of text).
    /// Returns the number of events written.
    @discardableResult
    public func export(progress: (Int64, Int64) -> Void = { _, _ in }, _ write: (String) throws -> Void) async throws -> Int64 {
        var outline: LogOutline?
        var nextCheckpoint = 0
        var count: Int64 = 0
        var buffer = ""
        try await walk({ outline = $0 }) { row in
            let checkpoints = outline!.checkpoints
            while nextCheckpoint < checkpoints.count, checkpoints[nextCheckpoint].id < row.id {
                buffer += ExportFormat.checkpointLine(id: checkpoints[nextCheckpoint].id, hash: checkpoints[nextCheckpoint].hash)
                nextCheckpoint += 1
            }
            buffer += ExportFormat.eventLine(row.stored)
            count += 1
            if buffer.utf8.count >= 1 << 16 {
                try write(buffer)
                buffer = ""
                progress(count, outline!.events)
            }
            return true
        }
        guard let outline else { throw AdminError("reading \(location) failed: the walk read nothing") }
        for checkpoint in outline.checkpoints[nextCheckpoint...] {
            buffer += ExportFormat.checkpointLine(id: checkpoint.id, hash: checkpoint.hash)
        }
        for stream in outline.streams where stream.deletedAt != nil || stream.prunedThrough > 0 {
            buffer += ExportFormat.streamStateLine(stream)
        }
        buffer += "{\"head\":\(outline.head)}\n"
        try write(buffer)
        progress(count, outline.events)
        return count
    }
}

/// Reads an export into an empty log, checking the chain as it goes: every event's hash must be the one its
/// predecessor (or the checkpoint before it) and its own fields give. Lines without a hash get the computed one.
public struct Importer {
    private var previous = ChainHash.genesis
    private var lastID: Int64 = 0
    private var pending: [ImportRecord] = []
    public private(set) var events: Int64 = 0
    private var line = 0
    let log: any LogMaintenance

    /// - Parameter location: how messages name the log (a path, or a URL without its password).
    public init(log: any LogMaintenance, location: String = "the log") async throws {
        guard try await log.isEmpty() else { throw AdminError("\(location) is not empty; import only into a new log") }
        self.log = log
    }

    /// The chain's tip so far: what the next event must chain from.
    public var tip: [UInt8] { previous }

    /// Takes one line of an export; writes in transactions of 10 000 records.
    public mutating func add(line text: Substring) async throws {
        line += 1
        guard !text.allSatisfy(\.isWhitespace) else { return }
        var record = try ExportFormat.record(text, number: line)
        switch record {
        case .event(let event, let hash):
            guard event.id > lastID else { throw AdminError("line \(line): id \(event.id) does not follow \(lastID)") }
            let computed = ChainHash.hash(previous: previous, event: event)
            if !hash.isEmpty, hash != computed {
                throw AdminError(
                    "line \(line): event \(event.id) (stream \(event.stream)) does not match its hash: the export was changed or is incomplete"
                )
            }
            record = .event(event, hash: computed)
            previous = computed
            lastID = event.id
            events += 1
        case .checkpoint(let id, let hash):
            guard id > lastID else { throw AdminError("line \(line): checkpoint \(id) does not follow \(lastID)") }
            previous = hash
            lastID = id
        case .streamState, .head:
            break
        }
        pending.append(record)
        if pending.count >= 10_000 { try await flush() }
    }

    /// Writes what is left.
    public mutating func finish() async throws {
        try await flush()
    }

    private mutating func flush() async throws {
        guard !pending.isEmpty else { return }
        try await log.importRecords(pending)
        pending.removeAll(keepingCapacity: true)
    }
}
