internal import AsyncHTTPClient
internal import Foundation
internal import NIOCore
internal import NIOHTTP1
internal import RewindCore
public import RewindStore

/// `rewind query --server` and `rewind streams --server`: the file commands' answers, read through a server's
/// HTTP API (`GET /v1/events` with `Accept: application/json`, `GET /v1/streams`).
extension ServerClient {
    /// Most events one JSON read may ask for: the server's cap.
    public static let maxPageSize = 10_000

    /// The events `query` selects, as `LogReader.events` returns them from the file (without the stored hash, which
    /// the API does not carry).
    ///
    /// Streams, types, `after`, `since` and `until` go to the server; `before`, `text` and `fields`, which the API
    /// has no parameter for, are checked here on every event of every page (`ClientSideFilter`). The read is bounded
    /// by the head of the first page, so a log being written to while it is read still ends. With `reverse` and a
    /// limit, windows of ids are read backwards from the head, each twice as large as the last, so the newest
    /// events come back without reading the whole log.
    /// - Parameter pageSize: events asked for per request, at most `maxPageSize`.
    public func events(_ query: EventQuery, pageSize: Int = ServerClient.maxPageSize) async throws -> [StoredEvent] {
        let pageSize = min(max(pageSize, 1), Self.maxPageSize)
        let filter = ClientSideFilter(query)
        let low = max(query.after ?? 0, 0)
        if query.limit == 0 || query.before.map({ $0 <= 1 }) == true { return [] }
        let high = query.before.map { $0 - 1 }
        guard query.reverse, let limit = query.limit else {
            let events = try await readForward(query, filter: filter, after: low, through: high, wanted: query.limit, pageSize: pageSize)
            return query.reverse ? events.reversed() : events
        }
        // One event tells the head, and that nothing the server selects lies at or below the first id it sends.
        let probe = try await page(query, after: low, limit: 1)
        guard let first = probe.events.first else { return [] }
        let floor = first.0.event.id - 1
        var top = min(high ?? probe.head, probe.head)
        var window = Int64(max(limit, 100)) * 2
        var newestFirst: [StoredEvent] = []
        while newestFirst.count < limit, top > floor {
            let bottom = max(floor, top - window)
            newestFirst += try await readForward(query, filter: filter, after: bottom, through: top, wanted: nil, pageSize: pageSize).reversed()
            top = bottom
            window = min(window * 2, 1 << 40)
        }
        return Array(newestFirst.prefix(limit))
    }

    /// Reads forward from `after`, keeping the matches with ids up to `through` and up to the head of the first
    /// page, until `wanted` are kept or the server has no more.
    private func readForward(
        _ query: EventQuery,
        filter: ClientSideFilter,
        after: Int64,
        through: Int64?,
        wanted: Int?,
        pageSize: Int
    ) async throws -> [StoredEvent] {
        var cursor = after
        var bound = through
        var kept: [StoredEvent] = []
        var first = true
        while true {
            var limit = pageSize
            if filter.isEmpty, let wanted { limit = min(limit, wanted - kept.count) }
            // No more than the ids left in range can match, so a full page always means "read on".
            if let bound { limit = Int(min(Int64(limit), bound - cursor)) }
            guard limit >= 1 else { return kept }
            let page = try await page(query, after: cursor, limit: limit)
            if first {
                bound = min(bound ?? page.head, page.head)
                first = false
            }
            for (event, parsed) in page.events {
                if let bound, event.event.id > bound { return kept }
                guard filter.matches(event.event, parsedData: parsed) else { continue }
                kept.append(event)
                if let wanted, kept.count >= wanted { return kept }
            }
            guard page.events.count == limit, let last = page.events.last else { return kept }
            cursor = last.0.event.id
        }
    }

    /// One page of events after a cursor, with the server-side filters of `query`.
    private func page(_ query: EventQuery, after: Int64, limit: Int) async throws -> EventPage {
        let streams = query.streams.isEmpty || query.streams.contains("*") ? ["*"] : query.streams
        var parameters = streams.map { "stream=\(Self.escape($0))" } + query.types.map { "type=\(Self.escape($0))" }
        parameters += ["after=\(after)", "limit=\(limit)"]
        if let since = query.since { parameters.append("since=\(Self.escape(since.description))") }
        if let until = query.until { parameters.append("until=\(Self.escape(until.description))") }
        var request = self.request("/v1/events?" + parameters.joined(separator: "&"))
        request.headers.add(name: "Accept", value: "application/json")
        let body = try await fetch(request, what: "reading events")
        do {
            return try EventPage(parsing: body)
        } catch {
            throw AdminError("reading events: the server's answer is not Rewind's: \(error)")
        }
    }

    /// The server's live streams, with the counters `GET /v1/streams` carries (`StreamSummary.serverColumns`).
    public func streams() async throws -> [StreamSummary] {
        var request = self.request("/v1/streams")
        request.headers.add(name: "Accept", value: "application/json")
        let body = try await fetch(request, what: "listing streams")
        do {
            guard case .array(let items) = try JSONParser.parse(body) else { throw AdminError("not an array") }
            return try items.map(StreamSummary.init(server:))
        } catch {
            throw AdminError("listing streams: the server's answer is not Rewind's: \(error)")
        }
    }

    /// A GET's body; a refusal becomes one line with the problem's `detail`.
    private func fetch(_ request: HTTPClientRequest, what: String) async throws -> [UInt8] {
        // A page holds at most 10 000 events of at most the server's event size.
        let (response, body) = try await exchange(request, timeout: .seconds(300), maxBytes: 1 << 31)
        guard response.status == .ok else { throw Self.failure(response.status, body: body, what: what) }
        return Array(body.readableBytesView)
    }
}

/// One JSON read's answer: `{"events": [...], "next_after": N, "head": N}`, each event with its data parsed when
/// it is JSON (for `--where`) and kept verbatim as the log holds it.
private struct EventPage {
    var events: [(StoredEvent, JSONValue?)]
    var head: Int64

    init(parsing body: [UInt8]) throws {
        var parser = JSONParser(body)
        var events: [(StoredEvent, JSONValue?)] = []
        var head: Int64?
        try parser.forEachMember { (parser: inout JSONParser, name: String) throws(JSONParser.Failure) in
            switch name {
            case "events":
                try parser.forEachElement { (parser: inout JSONParser) throws(JSONParser.Failure) in
                    events.append(try Self.event(&parser))
                }
            case "head":
                guard case .number(let literal) = try parser.value(), let number = Int64(literal) else { throw parser.fail("head is not an id") }
                head = number
            default:
                _ = try parser.value()
            }
        }
        guard let head else { throw AdminError("no head") }
        self.events = events
        self.head = head
    }

    private static func event(_ parser: inout JSONParser) throws(JSONParser.Failure) -> (StoredEvent, JSONValue?) {
        var id: Int64?
        var stream: String?
        var type: String?
        var data: (text: String, isJSON: Bool, parsed: JSONValue?)?
        var time: Timestamp?
        var key: String?
        try parser.forEachMember { (parser: inout JSONParser, name: String) throws(JSONParser.Failure) in
            let (value, range) = try parser.valueWithRange(depth: 2)
            switch (name, value) {
            case ("id", .number(let literal)): id = Int64(literal)
            case ("stream", .string(let text)): stream = text
            case ("type", .string(let text)): type = text
            // A JSON string is text data; any other value is JSON data, taken verbatim.
            case ("data", .string(let text)): data = (text, false, nil)
            case ("data", _): data = (parser.text(range), true, value)
            case ("time", .string(let text)): time = Timestamp(rfc3339: text)
            case ("key", .string(let text)): key = text
            default: break
            }
        }
        guard let id, let stream, let type, let data, let time else { throw parser.fail("an event without id, stream, type, data or time") }
        let event = Event(id: id, stream: stream, type: type, data: data.text, isJSON: data.isJSON, time: time, key: key)
        return (StoredEvent(event: event, hash: nil), data.parsed)
    }
}

extension StreamSummary {
    /// The columns `rewind streams --server` prints: those `GET /v1/streams` carries, named and filled as
    /// `rewind streams --db` names and fills them.
    public static let serverColumns = ["name", "count", "first_id", "last_id", "last_time", "bytes"]

    /// This summary's cells for `serverColumns`.
    public var serverCells: [Cell] {
        let all = cells
        return Self.serverColumns.map { all[Self.columns.firstIndex(of: $0)!] }
    }

    /// A stream as `GET /v1/streams` lists it; what the API does not carry (the first event's time, the pruning
    /// horizon, tombstones) is left empty.
    init(server value: JSONValue) throws {
        guard case .object(let members) = value else { throw AdminError("a stream is not an object") }
        func member(_ name: String) -> JSONValue? { members.first { $0.name == name }?.value }
        func integer(_ name: String) throws -> Int64 {
            guard case .number(let literal) = member(name), let number = Int64(literal) else { throw AdminError("a stream without \(name)") }
            return number
        }
        guard case .string(let name) = member("name") else { throw AdminError("a stream without a name") }
        let count = try integer("count")
        var lastTime: Timestamp?
        if case .string(let text) = member("last_time") { lastTime = Timestamp(rfc3339: text) }
        self.init(
            name: name,
            count: count,
            // As the file's listing shows them: a stream whose events are all gone has no first id or times.
            firstID: count > 0 ? try integer("first_id") : nil,
            lastID: try integer("last_id"),
            firstTime: nil,
            lastTime: count > 0 ? lastTime : nil,
            bytes: try integer("bytes"),
            prunedThrough: 0,
            deletedAt: nil
        )
    }
}
