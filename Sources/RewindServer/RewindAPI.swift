import HTTPTypes
import Hummingbird
import NIOCore
import Prometheus
import RewindCore
import RewindStore

/// The HTTP API of SPEC §2 over one event log.
struct RewindAPI: Sendable {
    let log: any EventStore
    let recent: RecentEvents
    /// Caught-up subscribers, per event loop.
    let live: LiveSubscribers
    let metrics: ServerMetrics
    let configuration: RewindConfiguration
    let authenticator: Authenticator
    let quota: SubscriberQuota

    /// The API's routes; those under `/v1` run behind `AuthMiddleware`, the health and metrics routes need no token.
    func addRoutes(to router: some RouterMethods<RewindRequestContext>) {
        addTokenRoutes(to: router.group().add(middleware: AuthMiddleware(authenticator: authenticator)))
        router.get("/healthz") { _, _ in
            jsonResponse(.ok) {
                $0.beginObject(); $0.key("status"); $0.string("ok"); $0.endObject()
            }
        }
        router.get("/readyz") { _, _ in
            try await ready()
        }
        router.get("/metrics") { _, _ in
            metrics.refreshLog(head: log.commits.head, bytes: await log.storageBytes())
            return Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                body: .init(byteBuffer: ByteBuffer(bytes: metrics.registry.emitToBuffer()))
            )
        }
    }

    /// Every route here finds the request's access in its context: a request without a valid token never reaches
    /// the handler.
    private func addTokenRoutes(to router: RouterGroup<RewindRequestContext>) {
        router.post("/v1/streams/:stream/events") { request, context in
            let received = ContinuousClock.now
            var response = try await publish(request, context: context)
            response.body = metrics.timingPublish(response.body, since: received)
            return response
        }
        router.get("/v1/streams/:stream/events") { request, context in
            try await events(request, context: context)
        }
        router.get("/v1/streams/:stream/events/:id") { request, context in
            try await event(request, context: context)
        }
        router.get("/v1/events") { request, context in
            try await multiStreamEvents(request, context: context)
        }
        router.post("/v1/events") { request, context in
            try await postedEvents(request, context: context)
        }
        router.get("/v1/streams") { _, context in
            try await listStreams(context: context)
        }
        router.get("/v1/streams/:stream") { _, context in
            try await showStream(context: context)
        }
        router.delete("/v1/streams/:stream") { _, context in
            try await deleteStream(context: context)
        }
    }

    /// The `{stream}` path parameter, percent-decoded (the router hands out path segments as sent, and clients
    /// may encode a `:` as `%3A`), validated.
    func streamName(_ context: RewindRequestContext) throws -> StreamName {
        let raw = context.parameters.get("stream") ?? ""
        return try StreamName(validating: Self.percentDecoded(raw) ?? raw)
    }

    /// `%XX` escapes turned back into bytes; nil when an escape is malformed or the bytes are not UTF-8.
    static func percentDecoded(_ text: String) -> String? {
        guard text.utf8.contains(UInt8(ascii: "%")) else { return text }
        var bytes: [UInt8] = []
        var input = text.utf8.makeIterator()
        while let byte = input.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = input.next().flatMap({ UInt8(String(UnicodeScalar($0)), radix: 16) }),
                let low = input.next().flatMap({ UInt8(String(UnicodeScalar($0)), radix: 16) })
            else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    func jsonResponse(_ status: HTTPResponse.Status, headers: HTTPFields = [:], _ build: (inout JSONWriter) -> Void) -> Response {
        var json = JSONWriter()
        build(&json)
        var headers = headers
        headers[.contentType] = "application/json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json.bytes)))
    }
}

extension HTTPField.Name {
    static let lastEventID = Self("Last-Event-ID")!
    static let idempotencyKey = Self("Idempotency-Key")!
    static let idempotentReplayed = Self("Idempotent-Replayed")!
    static let rewindHead = Self("Rewind-Head")!
    static let xAccelBuffering = Self("X-Accel-Buffering")!
}
