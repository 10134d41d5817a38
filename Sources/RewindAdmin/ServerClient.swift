public import AsyncHTTPClient
internal import Foundation
internal import NIOCore
internal import NIOHTTP1
import RewindCore
internal import RewindStore

/// `rewind tail` and `rewind publish`: HTTP clients of a running Rewind server.
public struct ServerClient: Sendable {
    /// The server's base URL, e.g. `http://127.0.0.1:8080`.
    public var server: String
    /// Sent as `Authorization: Bearer <token>`.
    public var token: String?
    let http: HTTPClient

    /// The client the commands use: a connection that cannot be made fails at once instead of being retried until
    /// the request's deadline (`tail` has its own reconnect loop, `publish` reports the failure).
    public static let defaultHTTPClient: HTTPClient = {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.timeout.connect = .seconds(10)
        return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
    }()

    public init(server: String, token: String? = nil, http: HTTPClient = ServerClient.defaultHTTPClient) throws {
        var base = server
        while base.hasSuffix("/") { base.removeLast() }
        guard let url = URL(string: base), url.scheme == "http" || url.scheme == "https", url.host != nil else {
            throw AdminError("--server '\(server)' is not an http:// or https:// URL")
        }
        self.server = base
        self.token = token
        self.http = http
    }

    func request(_ path: String, method: HTTPMethod = .GET) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: server + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        return request
    }

    /// A one-line error from a refusal: the problem+json `detail` when there is one.
    static func failure(_ status: HTTPResponseStatus, body: ByteBuffer, what: String) -> AdminError {
        var detail = String(buffer: body).trimmingCharacters(in: .whitespacesAndNewlines)
        if let object = try? JSONSerialization.jsonObject(with: Data(detail.utf8)) as? [String: Any],
            let text = (object["detail"] ?? object["title"]) as? String
        {
            detail = text
        }
        return AdminError("\(what) answered \(status.code) \(status.reasonPhrase)" + (detail.isEmpty ? "" : ": \(detail)"))
    }

    static func escape(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&=+?#/"))) ?? text
    }
}

// MARK: - Publish

/// What the server answered a publish with.
public struct PublishReceipt: Sendable, Equatable {
    public var stream: String
    public var firstID: Int64
    public var lastID: Int64
    public var time: String
    /// True when the `Idempotency-Key` had been used and nothing was appended.
    public var replayed: Bool
    /// The server's JSON answer, as sent.
    public var body: String
}

extension ServerClient {
    /// Publishes one event whose data is `data` (as text; `type` defaults to `message`).
    public func publish(stream: String, data: String, type: String?, idempotencyKey: String?) async throws -> PublishReceipt {
        var path = "/v1/streams/\(Self.escape(stream))/events"
        if let type { path += "?type=\(Self.escape(type))" }
        var request = self.request(path, method: .POST)
        request.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        request.body = .bytes(ByteBuffer(string: data))
        return try await send(request, stream: stream)
    }

    /// Publishes one batch, committed atomically: each line's text is one event's data.
    public func publish(stream: String, lines: [String], type: String?, idempotencyKey: String?) async throws -> PublishReceipt {
        var body = ""
        for line in lines {
            var json = JSONWriter()
            json.beginObject()
            if let type {
                json.key("type")
                json.string(type)
            }
            json.key("data")
            json.string(line)
            json.endObject()
            body += String(decoding: json.bytes, as: UTF8.self) + "\n"
        }
        var request = self.request("/v1/streams/\(Self.escape(stream))/events", method: .POST)
        request.headers.add(name: "Content-Type", value: "application/x-ndjson")
        if let idempotencyKey { request.headers.add(name: "Idempotency-Key", value: idempotencyKey) }
        request.body = .bytes(ByteBuffer(string: body))
        return try await send(request, stream: stream)
    }

    /// Sends `request` and reads the whole answer, up to `maxBytes`; not reaching the server (or a longer answer)
    /// becomes one line naming the server.
    func exchange(
        _ request: HTTPClientRequest,
        timeout: TimeAmount,
        maxBytes: Int
    ) async throws -> (response: HTTPClientResponse, body: ByteBuffer) {
        do {
            let response = try await http.execute(request, timeout: timeout)
            return (response, try await response.body.collect(upTo: maxBytes))
        } catch {
            throw AdminError("cannot reach \(server): \(error)")
        }
    }

    private func send(_ request: HTTPClientRequest, stream: String) async throws -> PublishReceipt {
        let (response, body) = try await exchange(request, timeout: .seconds(60), maxBytes: 1 << 20)
        guard response.status == .created || response.status == .ok else {
            throw Self.failure(response.status, body: body, what: "publish to \(stream)")
        }
        let text = String(buffer: body)
        guard let object = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
            let first = object["first_id"] as? Int, let last = object["last_id"] as? Int
        else { throw AdminError("publish to \(stream): the server's answer is not Rewind's: \(text)") }
        return PublishReceipt(
            stream: stream,
            firstID: Int64(first),
            lastID: Int64(last),
            time: object["time"] as? String ?? "",
            replayed: response.headers.first(name: "Idempotent-Replayed") == "true",
            body: text
        )
    }
}

// MARK: - Tail

/// What `rewind tail` follows.
public struct TailOptions: Sendable {
    /// Stream names or patterns.
    public var streams: [String]
    public var types: [String] = []
    /// `earliest`, `latest` or an id to start after; nil: only new events.
    public var from: String?
    /// Keep following live events (reconnecting as needed); false: stop once caught up.
    public var follow = true
    /// Give up after this many failed connection attempts in a row (nil: never).
    public var maxAttempts: Int?

    public init(streams: [String]) {
        self.streams = streams
    }
}

/// One received event, as SSE carries it.
public struct TailEvent: Sendable, Equatable {
    public var id: String
    public var type: String
    public var data: String

    public static let columns = ["id", "type", "data"]
    public var cells: [Cell] { [Int64(id).map(Cell.integer) ?? .text(id), .text(type), .text(data)] }
}

extension ServerClient {
    /// Follows streams over SSE, resuming with `Last-Event-ID` after every disconnect (waiting the stream's
    /// `retry:` time), so a server restart costs no event and repeats none. Server signals (`rewind.gap`,
    /// `rewind.reset`) go to `notice`, events to `receive`. Returns when the server ends a finite read
    /// (`follow == false`), or answers 204 (the streams were deleted).
    public func tail(
        _ options: TailOptions,
        notice: @Sendable (String) -> Void,
        receive: (TailEvent) async throws -> Void
    ) async throws {
        var lastEventID: String?
        var retry = 1000
        var failures = 0
        while true {
            var query = options.streams.map { "stream=\(Self.escape($0))" } + options.types.map { "type=\(Self.escape($0))" }
            if !options.follow { query.append("live=false") }
            // The resume cursor goes in `after=` rather than `Last-Event-ID`: the server answers a reconnect to a
            // stream that never had events with 204 (stop), which a tail waiting for the first event must not get.
            if let lastEventID {
                query.append("after=\(Self.escape(lastEventID))")
            } else if let from = options.from {
                if from == "earliest" || from == "latest" {
                    query.append("from=\(from)")
                } else {
                    query.append("after=\(Self.escape(from))")
                }
            }
            var request = self.request("/v1/events?" + query.joined(separator: "&"))
            request.headers.add(name: "Accept", value: "text/event-stream")
            var parser = SSEParser()
            var endedCleanly = false
            do {
                let response = try await http.execute(request, timeout: .hours(24 * 365))
                if response.status == .noContent {
                    notice("the server answered 204: the streams are deleted or never had events")
                    return
                }
                guard response.status == .ok else {
                    let body = (try? await response.body.collect(upTo: 1 << 16)) ?? ByteBuffer()
                    let error = Self.failure(response.status, body: body, what: "subscribing")
                    // Refusals of the request itself will not change on a retry.
                    if (400..<500).contains(response.status.code) { throw error }
                    throw RetryableFailure(description: error.description)
                }
                failures = 0
                // Starting at the head: resume from the head this answer started at, not from a later one.
                if lastEventID == nil, options.from == nil || options.from == "latest", let head = response.headers.first(name: "Rewind-Head") {
                    lastEventID = head
                }
                for try await chunk in response.body {
                    for message in parser.feed(chunk.readableBytesView) {
                        if !parser.lastEventID.isEmpty { lastEventID = parser.lastEventID }
                        if message.type.hasPrefix("rewind.") {
                            notice("\(message.type) \(message.data)")
                        } else {
                            try await receive(TailEvent(id: message.lastEventID, type: message.type, data: message.data))
                        }
                    }
                }
                endedCleanly = true
            } catch let error as AdminError {
                throw error
            } catch {
                failures += 1
                if let maxAttempts = options.maxAttempts, failures >= maxAttempts {
                    throw AdminError("cannot reach \(server) after \(failures) attempts: \(error)")
                }
                notice("disconnected (\(error)); reconnecting" + (lastEventID.map { " after event \($0)" } ?? ""))
            }
            retry = parser.retry ?? retry
            if endedCleanly {
                if !options.follow { return }
                notice("the server ended the stream; reconnecting" + (lastEventID.map { " after event \($0)" } ?? ""))
            }
            try await Task.sleep(for: .milliseconds(min(max(retry, 50), 30_000)))
        }
    }
}

private struct RetryableFailure: Error, CustomStringConvertible {
    var description: String
}
