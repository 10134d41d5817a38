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

/// One subscription or JSON read, whichever form it came in: the query of a `GET` or the JSON body of
/// `POST /v1/events`. Both forms are parsed into this and answered by one path, so they cannot drift apart.
///
/// Every part present is validated, also the parts the answer's form does not use (`wait` on SSE, `live` on the
/// JSON read): a request is refused for what it holds, not for which of its parts happened to be read.
struct SubscriptionRequest: Sendable {
    var filter: EventFilter
    /// The explicit starting point: `Last-Event-ID`, `after`/`last_event_id` or `from`; nil when none is given.
    var cursor: StartPosition?
    /// SSE: the starting point when there is no cursor. JSON: a filter, events committed at or after it.
    var since: Timestamp?
    /// JSON only: events committed before it.
    var until: Timestamp?
    var limit: Int?
    /// SSE only: false closes the stream once caught up.
    var live: Bool
    /// JSON only: how long to long-poll for a first event.
    var wait: Duration?
    /// A `Last-Event-ID` header was sent: an EventSource reconnecting.
    var reconnecting: Bool
}

extension RewindAPI {
    /// `GET /v1/streams/{stream}/events`: an SSE stream, or a JSON page when the client asks for
    /// `application/json` and not for `text/event-stream`.
    func events(_ request: Request, context: RewindRequestContext) async throws -> Response {
        let subscription = try subscription(query: request, filter: EventFilter(stream: try streamName(context), types: try types(request)))
        return try await eventsResponse(request, subscription, context: context)
    }

    /// `GET /v1/events?stream=a&stream=b.*`: several streams, or trailing-`*` patterns, with one shared cursor.
    func multiStreamEvents(_ request: Request, context: RewindRequestContext) async throws -> Response {
        let patterns = request.uri.queryParameters.getAll("stream")
        try checkStreamCount(patterns.count, field: "stream")
        let subscription = try subscription(query: request, filter: try EventFilter(patterns: patterns, types: try types(request)))
        return try await eventsResponse(request, subscription, context: context)
    }

    /// `POST /v1/events`: the same subscription or read, described by a JSON body (SubscriptionBody), for clients
    /// that send headers and stream lists too long for a URL. The `Last-Event-ID` header still wins over the body's
    /// starting point, so a client that resends the same body on every reconnect resumes where it left off.
    func postedEvents(_ request: Request, context: RewindRequestContext) async throws -> Response {
        try SubscriptionBody.checkContentType(request.headers[.contentType])
        var request = request
        let limit = subscriptionBodyLimit
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit {
            throw subscriptionBodyTooLarge(limit)
        }
        let bytes: ByteBuffer
        do {
            bytes = try await request.collectBody(upTo: limit)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw subscriptionBodyTooLarge(limit)
        } catch is NIOTooManyBytesError {
            throw subscriptionBodyTooLarge(limit)
        }
        let body = try SubscriptionBody.parse(Array(bytes.readableBytesView), contentType: request.headers[.contentType])
        try checkStreamCount(body.streams.count, field: "streams")
        let header = try StartPosition.lastEventID(header: request.headers[.lastEventID]).map {
            try StartPosition.parseCursor($0, field: "Last-Event-ID")
        }
        var cursor = header.map(StartPosition.after) ?? body.start
        var since: Timestamp?
        if case .since(let time) = cursor {
            since = time
            cursor = nil
        }
        let subscription = SubscriptionRequest(
            filter: try EventFilter(patterns: body.streams, types: body.types),
            cursor: cursor,
            since: since,
            until: body.until,
            limit: body.limit,
            live: body.live ?? true,
            wait: try body.wait.map { seconds in
                try waitDuration(
                    seconds: seconds,
                    text: seconds == seconds.rounded() && seconds < 1e15 ? String(Int64(seconds)) : String(seconds),
                    field: "wait"
                )
            },
            reconnecting: header != nil
        )
        return try await eventsResponse(request, subscription, context: context)
    }

    /// The largest `POST /v1/events` body: room for the most streams a subscription may name at their longest,
    /// and a generous list of types, never more than a publish may send.
    var subscriptionBodyLimit: Int {
        min(configuration.maxBodyBytes, 64 << 10 + configuration.maxStreamsPerSubscription * 256)
    }

    private func subscriptionBodyTooLarge(_ limit: Int) -> Problem {
        Problem(.contentTooLarge, "request body is over the limit of \(limit) bytes for a subscription", field: "body")
    }

    private func checkStreamCount(_ count: Int, field: String) throws {
        guard count <= configuration.maxStreamsPerSubscription else {
            throw Problem(
                .badRequest,
                "\(field): a subscription may name at most \(configuration.maxStreamsPerSubscription) streams or patterns; this one names \(count)",
                field: field
            )
        }
    }

    /// A subscription from the query string (and the `Last-Event-ID` header), every parameter present validated.
    private func subscription(query request: Request, filter: EventFilter) throws -> SubscriptionRequest {
        let query = request.uri.queryParameters
        let start = try StartPosition.resolve(
            lastEventIDHeader: request.headers[.lastEventID],
            after: query.get("after"),
            lastEventIDParameter: query.get("last_event_id"),
            from: query.get("from"),
            since: query.get("since"),
            otherwise: .latest
        )
        var cursor: StartPosition? = start
        switch start {
        case .since: cursor = nil
        case .latest where query.get("from") == nil: cursor = nil
        default: break
        }
        return SubscriptionRequest(
            filter: filter,
            cursor: cursor,
            since: try query.get("since").map { try StartPosition.parseTime($0, field: "since") },
            until: try query.get("until").map { try StartPosition.parseTime($0, field: "until") },
            limit: try query.get("limit").map { try positiveInt($0, field: "limit") },
            live: try query.get("live").map { try bool($0, field: "live") } ?? true,
            wait: try query.get("wait").map { text in
                guard let seconds = Double(text) else { throw waitProblem(text: text, field: "wait") }
                return try waitDuration(seconds: seconds, text: text, field: "wait")
            },
            reconnecting: StartPosition.lastEventID(header: request.headers[.lastEventID]) != nil
        )
    }

    /// SSE, or a JSON page when the client asks for `application/json` and not for `text/event-stream`; both after
    /// checking that the token may read every stream the subscription names.
    private func eventsResponse(_ request: Request, _ subscription: SubscriptionRequest, context: RewindRequestContext) async throws -> Response {
        try context.access.require(subscribeTo: subscription.filter)
        let accept = request.headers[.accept]?.lowercased() ?? ""
        if accept.contains("application/json") && !accept.contains("text/event-stream") {
            return try await readJSON(subscription)
        }
        return try await subscribe(request, subscription, access: context.access, channel: context.channel)
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
    func event(_ request: Request, context: RewindRequestContext) async throws -> Response {
        let stream = try streamName(context)
        try context.access.require(subscribeTo: EventFilter(stream: stream))
        let id = try StartPosition.parseCursor(context.parameters.get("id") ?? "", field: "id")
        guard let event = try await log.event(id: id), event.stream == stream.rawValue else {
            throw Problem(.notFound, "stream \(stream) has no event with id \(id)", field: "id")
        }
        return jsonResponse(.ok) { event.writeJSON(to: &$0) }
    }

    // MARK: - SSE

    private func subscribe(
        _ request: Request,
        _ subscription: SubscriptionRequest,
        access: Access,
        channel: any Channel
    ) async throws -> Response {
        let filter = subscription.filter
        let start = subscription.cursor ?? subscription.since.map(StartPosition.since) ?? .latest
        let cursor = try await resolve(start)
        if try await isGone(filter, reconnecting: subscription.reconnecting) {
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
            limit: subscription.limit,
            live: subscription.live,
            heartbeat: configuration.heartbeat,
            signalGaps: signalGaps,
            expires: access.expires.map { ContinuousClock.now + .seconds($0.timeIntervalSinceNow) }
        )
        let retry = configuration.retryMilliseconds
        let hub = log.commits
        // Caught up, an HTTP/1.1 subscriber is written from its connection's event loop. An HTTP/2 stream (a child of
        // its connection, itself a child of the listening socket) waits on the hub and writes from its task.
        // (A `HEAD` request, whose answer has no body, keeps the task's writes too.)
        let liveLoop = channel.parent?.parent == nil && request.method != .head ? live.loop(for: channel.eventLoop) : nil
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
                        try await session.run(
                            writer: &writer,
                            retryMilliseconds: retry,
                            subscriber: subscriber,
                            liveSet: liveLoop.map { ($0, channel) }
                        )
                    } onGracefulShutdown: {
                        hub.close()
                    }
                } onInboundClosed: {
                    hub.closeSubscriber(subscriber)
                    liveLoop?.close(subscriber: subscriber)
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

    private func readJSON(_ subscription: SubscriptionRequest) async throws -> Response {
        let filter = subscription.filter
        // A JSON read starts at the beginning of the log unless told otherwise; `since` and `until` are filters.
        let limit = subscription.limit ?? configuration.defaultReadLimit
        guard limit <= configuration.maxReadLimit else {
            throw Problem(
                .badRequest,
                "limit=\(limit) is invalid: a JSON page holds 1 to \(configuration.maxReadLimit) events",
                field: "limit"
            )
        }
        var cursor = try await resolve(subscription.cursor ?? .earliest)
        if let since = subscription.since {
            cursor = max(cursor, try await log.cursor(since: since))
        }
        var through: Int64?
        if let until = subscription.until {
            through = try await log.cursor(since: until)
        }
        let wait = subscription.wait
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

    /// The `wait` parameter or member: seconds, at most `maxLongPoll`.
    private func waitDuration(seconds: Double, text: String, field: String) throws -> Duration {
        // Compared as seconds, exactly as given: a value a hair over the maximum (60.000000000000014) is over it,
        // although it rounds down to the maximum in milliseconds; and a huge value never reaches a Duration.
        let maximum = configuration.maxLongPoll
        let maximumSeconds = Double(maximum.components.seconds) + Double(maximum.components.attoseconds) / 1e18
        guard seconds >= 0, seconds.isFinite, seconds <= maximumSeconds, case let wait = Duration.milliseconds(Int64(seconds * 1000))
        else {
            throw waitProblem(text: text, field: field)
        }
        return wait
    }

    private func waitProblem(text: String, field: String) -> Problem {
        Problem(
            .badRequest,
            "\(field)=\(text.prefix(32)) is invalid: expected seconds from 0 to \(configuration.maxLongPoll.components.seconds)",
            field: field
        )
    }

    // MARK: - Parameters

    /// Turns a starting point into a cursor: deliver events with ids greater than it.
    private func resolve(_ start: StartPosition) async throws -> Int64 {
        switch start {
        case .after(let id): return id
        case .earliest: return 0
        case .latest: return try await log.head()
        case .since(let time): return try await log.cursor(since: time)
        }
    }

    private func positiveInt(_ text: String, field: String) throws -> Int {
        guard let value = Int(text), value >= 1 else {
            throw Problem(.badRequest, "\(field)=\(text.prefix(32)) is invalid: expected a positive integer", field: field)
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
}
