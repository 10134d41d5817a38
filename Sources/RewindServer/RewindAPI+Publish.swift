import HTTPTypes
import Hummingbird
import NIOCore
import RewindCore
import RewindStore

extension RewindAPI {
    /// `POST /v1/streams/{stream}/events`: validates everything before the writer sees it, so a refused request
    /// writes nothing; answers 201 once the events are durable, or 200 replaying an earlier idempotent result.
    func publish(_ request: Request, context: RewindRequestContext) async throws -> Response {
        let stream = try streamName(context)
        try context.access.require(publishTo: stream)
        let key = try idempotencyKey(request.headers[.idempotencyKey])
        if let length = request.headers[.contentLength].flatMap(Int.init), length > configuration.maxBodyBytes {
            throw bodyTooLarge()
        }
        let body: ByteBuffer
        do {
            body = try await request.body.collect(upTo: configuration.maxBodyBytes)
        } catch let error as HTTPError where error.status == .contentTooLarge {
            throw bodyTooLarge()
        } catch is NIOTooManyBytesError {
            // A chunked body has no Content-Length to refuse it by; it is refused once it grows past the limit.
            throw bodyTooLarge()
        }
        let events = try PublishBody.parse(
            Array(body.readableBytesView),
            contentType: request.headers[.contentType],
            typeParameter: request.uri.queryParameters.get("type"),
            limits: configuration.publishLimits
        )
        let result = try await log.append(AppendRequest(stream: stream, events: events, idempotencyKey: key))
        var headers: HTTPFields = [.location: "/v1/streams/\(stream)/events/\(result.firstID)"]
        if result.replayed { headers[.idempotentReplayed] = "true" }
        return jsonResponse(result.replayed ? .ok : .created, headers: headers) { json in
            json.beginObject()
            json.key("stream")
            json.string(result.stream)
            json.key("ids")
            json.beginArray()
            for id in result.ids { json.int(id) }
            json.endArray()
            json.key("first_id")
            json.int(result.firstID)
            json.key("last_id")
            json.int(result.lastID)
            json.key("time")
            json.string(result.time.description)
            json.endObject()
        }
    }

    private func bodyTooLarge() -> Problem {
        Problem(.contentTooLarge, "request body is over the limit of \(configuration.maxBodyBytes) bytes", field: "body")
    }

    /// `Idempotency-Key`: 1-200 visible ASCII characters.
    private func idempotencyKey(_ value: String?) throws -> String? {
        guard let value else { return nil }
        guard !value.isEmpty, value.utf8.count <= 200, value.utf8.allSatisfy({ $0 >= 0x21 && $0 <= 0x7E }) else {
            throw Problem(
                .badRequest,
                "Idempotency-Key must be 1-200 visible ASCII characters without spaces",
                field: "Idempotency-Key"
            )
        }
        return value
    }
}
