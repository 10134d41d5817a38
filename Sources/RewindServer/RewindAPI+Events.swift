import HTTPTypes
import Hummingbird
import NIOCore
import RewindCore
import RewindStore
import ServiceLifecycle

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

extension RewindAPI {
    /// `GET /v1/streams/{stream}/events`: an SSE stream, or a JSON page when the client asks for
    /// `application/json` and not for `text/event-stream`.
    func events(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let access = try await access(request)
        let filter = EventFilter(stream: try streamName(context), types: try types(request))
        try access.require(subscribeTo: filter)
        return try await eventsResponse(request, filter: filter, access: access)
    }

    /// `GET /v1/events?stream=a&stream=b.*`: several streams, or trailing-`*` patterns, with one shared cursor.
    func multiStreamEvents(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let access = try await access(request)
        let patterns = request.uri.queryParameters.getAll("stream")
        guard patterns.count <= configuration.maxStreamsPerSubscription else {
            throw Problem(
                .badRequest,
                "a subscription may name at most \(configuration.maxStreamsPerSubscription) streams or patterns; this one names \(patterns.count)",
                field: "stream"
            )
        }
        let filter = try EventFilter(patterns: patterns, types: try types(request))
        try access.require(subscribeTo: filter)
        return try await eventsResponse(request, filter: filter, access: access)
    }

    /// SSE, or a JSON page when the client asks for `application/json` and not for `text/event-stream`.
    private func eventsResponse(_ request: Request, filter: EventFilter, access: Access) async throws -> Response {
        let accept = request.headers[.accept]?.lowercased() ?? ""
        if accept.contains("application/json") && !accept.contains("text/event-stream") {
            return try await readJSON(request, filter: filter)
        }
        return try await subscribe(request, filter: filter, access: access)
    }

    private func types(_ request: Request) throws -> [String] {
        try request.uri.queryParameters.getAll("type").map { type in
            guard StreamName.isValidEventType(type) else {
                throw Problem(.badRequest, "type=\(type.prefix(64)) is not a valid event type", field: "type")
            }
            return type
        }
    }

    /// `GET /v1/streams/{stream}/events/{id}`.
    func event(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let access = try await access(request)
        let stream = try streamName(context)
        try access.require(subscribeTo: EventFilter(stream: stream))
        let id = try StartPosition.parseCursor(context.parameters.get("id") ?? "", field: "id")
        guard let event = try await log.event(id: id), event.stream == stream.rawValue else {
            throw Problem(.notFound, "stream \(stream) has no event with id \(id)", field: "id")
        }
        return jsonResponse(.ok) { event.writeJSON(to: &$0) }
    }

    // MARK: - SSE

    private func subscribe(_ request: Request, filter: EventFilter, access: Access) async throws -> Response {
        let query = request.uri.queryParameters
        let start = try startPosition(request, since: query.get("since"), otherwise: .latest)
        let limit = try query.get("limit").map { try positiveInt($0, field: "limit", max: nil) }
        let live = try query.get("live").map { try bool($0, field: "live") } ?? true
        let cursor = try await resolve(start)
        let reconnecting = StartPosition.lastEventID(header: request.headers[.lastEventID]) != nil
        if try await isGone(filter, reconnecting: reconnecting) {
            // 204 tells EventSource to stop reconnecting.
            return Response(status: .noContent, headers: [.cacheControl: "no-cache"])
        }
        let lease = try quota.acquire(subject: access.subject)
        let signalGaps: Bool
        if case .after = start { signalGaps = true } else { signalGaps = false }
        var headers: HTTPFields = [
            .contentType: "text/event-stream; charset=utf-8",
            .cacheControl: "no-cache",
            .xAccelBuffering: "no",
            .rewindHead: String(log.commits.head),
        ]
        // The connection ends with the stream (watching for the client's close consumes the request side), so
        // clients must not try to reuse it.
        headers[.connection] = "close"
        let session = EventStreamSession(
            log: log,
            recent: recent,
            metrics: metrics,
            filter: filter,
            position: cursor,
            limit: limit,
            live: live,
            heartbeat: configuration.heartbeat,
            signalGaps: signalGaps,
            expires: access.expires.map { ContinuousClock.now + .seconds($0.timeIntervalSinceNow) }
        )
        let retry = configuration.retryMilliseconds
        let hub = log.commits
        return Response(
            status: .ok,
            headers: headers,
            body: ResponseBody { writer in
                // The subscription's place is held until its body ends.
                defer { withExtendedLifetime(lease) {} }
                var session = session
                // The client going away ends the session's wait; one watcher per connection, no extra tasks.
                let subscriber = hub.makeSubscriber()
                defer { hub.forgetSubscriber(subscriber) }
                try await request.body.consumeWithInboundCloseHandler { _ in
                    // On shutdown every stream ends cleanly, so clients reconnect to the next server with their id.
                    try await withGracefulShutdownHandler {
                        try await session.run(writer: &writer, retryMilliseconds: retry, subscriber: subscriber)
                    } onGracefulShutdown: {
                        hub.close()
                    }
                } onInboundClosed: {
                    hub.closeSubscriber(subscriber)
                }
                try await writer.finish(nil)
            }
        )
    }

    /// A subscription naming only deleted streams is gone; on a reconnect, so is one naming only streams that
    /// never had an event (the stream it followed no longer exists).
    private func isGone(_ filter: EventFilter, reconnecting: Bool) async throws -> Bool {
        guard !filter.allStreams, filter.prefixes.isEmpty, !filter.names.isEmpty else { return false }
        for name in filter.names {
            switch try await log.status(ofStream: name) {
            case .live: return false
            case .unknown where !reconnecting: return false
            case .unknown, .deleted: continue
            }
        }
        return true
    }

    // MARK: - JSON

    private func readJSON(_ request: Request, filter: EventFilter) async throws -> Response {
        let query = request.uri.queryParameters
        // A JSON read starts at the beginning of the log unless told otherwise; `since` and `until` are filters.
        let start = try startPosition(request, since: nil, otherwise: .earliest)
        let limit =
            try query.get("limit").map { try positiveInt($0, field: "limit", max: configuration.maxReadLimit) }
            ?? configuration.defaultReadLimit
        var cursor = try await resolve(start)
        if let since = query.get("since") {
            cursor = max(cursor, try await log.cursor(since: try time(since, field: "since")))
        }
        var through: Int64?
        if let until = query.get("until") {
            through = try await log.cursor(since: try time(until, field: "until"))
        }
        let wait = try query.get("wait").map { try waitDuration($0) }
        var page = try await log.read(ReadQuery(after: cursor, filter: filter, limit: limit, through: through))
        if let wait, page.events.isEmpty {
            page = try await longPoll(page, cursor: cursor, filter: filter, limit: limit, through: through, until: .now + wait)
        }
        return jsonResponse(.ok, headers: [.rewindHead: String(page.head)]) { json in
            json.beginObject()
            json.key("events")
            json.beginArray()
            for event in page.events { event.writeJSON(to: &json) }
            json.endArray()
            json.key("next_after")
            json.int(page.events.last?.id ?? cursor)
            json.key("head")
            json.int(page.head)
            json.endObject()
        }
    }

    /// Waits until at least one matching event exists after the cursor, re-reading on every commit, or until the
    /// deadline; returns the last page read.
    private func longPoll(
        _ first: ReadPage,
        cursor: Int64,
        filter: EventFilter,
        limit: Int,
        through: Int64?,
        until deadline: ContinuousClock.Instant
    )
        async throws -> ReadPage
    {
        var page = first
        let hub = log.commits
        while page.events.isEmpty, ContinuousClock.now < deadline, through.map({ page.scannedThrough < $0 }) ?? true {
            let position = page.scannedThrough
            let woken = await withTaskGroup(of: CommitHub.Wake?.self) { group in
                group.addTask { await hub.wait(after: position) }
                group.addTask {
                    try? await Task.sleep(until: deadline)
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
            guard let woken, woken != .closed else { break }
            if woken == .tick { continue }
            page = try await log.read(ReadQuery(after: max(cursor, position), filter: filter, limit: limit, through: through))
        }
        return page
    }

    /// The `wait=` parameter: seconds, at most `maxLongPoll`.
    private func waitDuration(_ text: String) throws -> Duration {
        guard let seconds = Double(text), seconds >= 0, seconds.isFinite, case let wait = Duration.milliseconds(Int64(seconds * 1000)),
            wait <= configuration.maxLongPoll
        else {
            throw Problem(
                .badRequest,
                "wait=\(text.prefix(32)) is invalid: expected seconds from 0 to \(configuration.maxLongPoll.components.seconds)",
                field: "wait"
            )
        }
        return wait
    }

    // MARK: - Parameters

    private func startPosition(_ request: Request, since: String?, otherwise: StartPosition) throws -> StartPosition {
        let query = request.uri.queryParameters
        return try StartPosition.resolve(
            lastEventIDHeader: request.headers[.lastEventID],
            after: query.get("after"),
            lastEventIDParameter: query.get("last_event_id"),
            from: query.get("from"),
            since: since,
            otherwise: otherwise
        )
    }

    /// Turns a starting point into a cursor: deliver events with ids greater than it.
    private func resolve(_ start: StartPosition) async throws -> Int64 {
        switch start {
        case .after(let id): return id
        case .earliest: return 0
        case .latest: return try await log.head()
        case .since(let time): return try await log.cursor(since: time)
        }
    }

    private func positiveInt(_ text: String, field: String, max: Int?) throws -> Int {
        guard let value = Int(text), value >= 1, value <= (max ?? Int.max) else {
            let range = max.map { "1 to \($0)" } ?? "a positive integer"
            throw Problem(.badRequest, "\(field)=\(text.prefix(32)) is invalid: expected \(range)", field: field)
        }
        return value
    }

    private func bool(_ text: String, field: String) throws -> Bool {
        switch text {
        case "true", "1", "yes": return true
        case "false", "0", "no": return false
        default: throw Problem(.badRequest, "\(field)=\(text.prefix(32)) is invalid: expected true or false", field: field)
        }
    }

    private func time(_ text: String, field: String) throws -> Timestamp {
        guard let time = Timestamp(rfc3339: text) else {
            throw Problem(.badRequest, "\(field)=\(text.prefix(64)) is not an RFC 3339 time such as 2026-11-21T18:30:00Z", field: field)
        }
        return time
    }
}
