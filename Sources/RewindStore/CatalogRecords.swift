internal import Foundation
public import RewindCore

/// What `rewind query` selects: every condition given must hold.
public struct EventQuery: Sendable {
    /// Stream names and `prefix*` / `prefix.*` patterns, or `*`; empty means every stream.
    public var streams: [String] = []
    public var types: [String] = []
    /// Only ids greater than this.
    public var after: Int64?
    /// Only ids less than this.
    public var before: Int64?
    /// Only events committed at or after this time.
    public var since: Timestamp?
    /// Only events committed before this time.
    public var until: Timestamp?
    /// Only events whose data contains this text (case-sensitive).
    public var text: String?
    /// Only events whose data is JSON with these fields equal to these values.
    public var fields: [FieldMatch] = []
    /// At most this many events; nil for all.
    public var limit: Int?
    /// Newest first: with a limit, the last events that match.
    public var reverse = false

    public init() {}

    /// The stream filter of `streams`, or nil when the query covers every stream.
    public func streamFilter() throws -> EventFilter? {
        let patterns = streams.filter { $0 != "*" }
        guard !patterns.isEmpty, patterns.count == streams.count else { return nil }
        do {
            return try EventFilter(patterns: patterns)
        } catch {
            throw AdminError("--stream: \(error)")
        }
    }
}

/// `--where path=value`: a field of JSON data, named by dotted path (`user.id`, `items.0.sku`), equal to a value.
/// The value is compared as a number when it reads as one, as `true`/`false`/`null` for those words, and as text
/// otherwise (quote it, `name="42"`, to compare a number-like text).
///
/// Both backends decide as SQLite's `json_valid`, `json_extract` and `json_type` do (`ClientSideFilter` holds the
/// same rules in Swift for the backends and clients that cannot run them).
public struct FieldMatch: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case integer(Int64)
        case real(Double)
        case text(String)
        case boolean(Bool)
        case null
    }

    /// The SQLite JSON path, e.g. `$."user"."id"`.
    public var path: String
    public var value: Value

    public init(parsing text: String) throws {
        guard let equals = text.firstIndex(of: "="), equals != text.startIndex else {
            throw AdminError("--where '\(text)' should look like field.path=value")
        }
        let name = text[..<equals]
        let raw = String(text[text.index(after: equals)...])
        var path = "$"
        for segment in name.split(separator: ".", omittingEmptySubsequences: false) {
            guard !segment.isEmpty else { throw AdminError("--where '\(text)': empty field name in '\(name)'") }
            if segment.allSatisfy(\.isNumber) {
                path += "[\(segment)]"
            } else {
                // Quoted, so names with characters SQLite's path syntax gives a meaning to still work.
                path += ".\"" + segment.replacingOccurrences(of: "\"", with: "\\\"") + "\""
            }
        }
        self.path = path
        if raw.count >= 2, raw.hasPrefix("\""), raw.hasSuffix("\"") {
            value = .text(String(raw.dropFirst().dropLast()))
        } else if let integer = Int64(raw) {
            value = .integer(integer)
        } else if let real = Double(raw), real.isFinite, raw.first?.isNumber == true || raw.first == "-" {
            value = .real(real)
        } else if raw == "true" || raw == "false" {
            value = .boolean(raw == "true")
        } else if raw == "null" {
            value = .null
        } else {
            value = .text(raw)
        }
    }
}

/// An event as the admin commands read it: with its stored hash.
public struct StoredEvent: Sendable, Equatable {
    public var event: Event
    public var hash: [UInt8]?

    public init(event: Event, hash: [UInt8]?) {
        self.event = event
        self.hash = hash
    }
}

/// A stream's counters as `rewind streams` and `rewind stats` list them.
public struct StreamSummary: Sendable, Equatable {
    public var name: String
    public var count: Int64
    public var firstID: Int64?
    public var lastID: Int64
    public var firstTime: Timestamp?
    public var lastTime: Timestamp?
    public var bytes: Int64
    /// The highest id removed from it by retention or deletion (0 if none).
    public var prunedThrough: Int64
    public var deletedAt: Timestamp?

    public init(
        name: String,
        count: Int64,
        firstID: Int64?,
        lastID: Int64,
        firstTime: Timestamp?,
        lastTime: Timestamp?,
        bytes: Int64,
        prunedThrough: Int64,
        deletedAt: Timestamp?
    ) {
        self.name = name
        self.count = count
        self.firstID = firstID
        self.lastID = lastID
        self.firstTime = firstTime
        self.lastTime = lastTime
        self.bytes = bytes
        self.prunedThrough = prunedThrough
        self.deletedAt = deletedAt
    }
}

/// What `rewind stats` reports about a log. The storage figures are the backend's: a SQLite file has a WAL and
/// free pages, a PostgreSQL database has neither (nil), only its size.
public struct LogStats: Sendable, Equatable {
    public var events: Int64
    /// Bytes of event data (UTF-8).
    public var bytes: Int64
    public var firstID: Int64?
    public var lastID: Int64?
    public var firstTime: Timestamp?
    public var lastTime: Timestamp?
    /// The last id ever given out; above `lastID` when the newest events were removed.
    public var head: Int64
    /// The SQLite file's size, or the PostgreSQL database's (`pg_database_size`).
    public var databaseBytes: Int64
    /// The SQLite WAL's size; nil on PostgreSQL.
    public var walBytes: Int64?
    /// Bytes SQLite holds free for reuse (given back to the file system by incremental vacuum after pruning); nil
    /// on PostgreSQL, whose autovacuum keeps its own account.
    public var freeBytes: Int64?
    public var checkpoints: Int64
    /// The retention policy last applied by the server or `rewind prune`, if any was.
    public var retention: String?
    public var streams: [StreamSummary]

    public init(
        events: Int64,
        bytes: Int64,
        firstID: Int64?,
        lastID: Int64?,
        firstTime: Timestamp?,
        lastTime: Timestamp?,
        head: Int64,
        databaseBytes: Int64,
        walBytes: Int64?,
        freeBytes: Int64?,
        checkpoints: Int64,
        retention: String?,
        streams: [StreamSummary]
    ) {
        self.events = events
        self.bytes = bytes
        self.firstID = firstID
        self.lastID = lastID
        self.firstTime = firstTime
        self.lastTime = lastTime
        self.head = head
        self.databaseBytes = databaseBytes
        self.walBytes = walBytes
        self.freeBytes = freeBytes
        self.checkpoints = checkpoints
        self.retention = retention
        self.streams = streams
    }
}

/// What `rewind verify` found.
public struct VerifyReport: Sendable {
    /// Events whose hash was recomputed and matched, up to the first failure.
    public var verified: Int64 = 0
    /// Checkpoints the chain passed through (runs of pruned or deleted events).
    public var checkpoints: Int = 0
    /// The hash of the last event or checkpoint checked: what the next event will chain from.
    public var tip: [UInt8] = ChainHash.genesis
    /// The backend's own storage check: `PRAGMA integrity_check`'s lines on SQLite (`["ok"]` for a sound file);
    /// nil when none ran (`--integrity none`, or PostgreSQL, which has no such check for an ordinary role).
    public var integrity: [String]?
    /// The first event that does not match, if any.
    public var failure: ChainFailure?

    public init() {}

    public var passed: Bool { failure == nil && (integrity == nil || integrity == ["ok"]) }
}

/// The first break in the audit chain: which event and what about it does not match.
public struct ChainFailure: Sendable, Equatable, CustomStringConvertible {
    /// The event at which the chain breaks; for events missing at the end of the log, the first missing id.
    public var id: Int64
    /// Its stream, when the event is there.
    public var stream: String?
    public var problem: String

    public init(id: Int64, stream: String?, problem: String) {
        self.id = id
        self.stream = stream
        self.problem = problem
    }

    public var description: String {
        "event \(id)" + (stream.map { " (stream \($0))" } ?? "") + ": " + problem
    }
}

/// How much of SQLite's own file check `verify` runs. PostgreSQL has no counterpart an ordinary role may run
/// (page checks need the `amcheck` extension), so there `verify` checks the audit chain alone.
public enum IntegrityCheck: String, Sendable, CaseIterable {
    case full, quick, none
}
