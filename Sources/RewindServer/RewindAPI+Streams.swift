import Hummingbird
import Logging
import RewindCore
import RewindStore

extension RewindAPI {
    /// `GET /v1/streams`.
    func listStreams(context: RewindRequestContext) async throws -> Response {
        // A token sees the streams it may read, and no others: names are information too.
        let streams = try await log.streams().filter { context.access.maySubscribe(to: $0.name) }
        return jsonResponse(.ok) { json in
            json.beginArray()
            for stream in streams { write(stream, to: &json) }
            json.endArray()
        }
    }

    /// `GET /v1/streams/{stream}`.
    func showStream(context: RewindRequestContext) async throws -> Response {
        let name = try streamName(context)
        try context.access.require(subscribeTo: EventFilter(stream: name))
        switch try await log.status(ofStream: name.rawValue) {
        case .unknown:
            throw Problem(.notFound, "stream \(name) has no events", field: "stream")
        case .deleted(let time):
            throw Problem(.gone, "stream \(name) was deleted at \(time)", field: "stream")
        case .live(let stream):
            return jsonResponse(.ok) { write(stream, to: &$0) }
        }
    }

    /// `DELETE /v1/streams/{stream}`: removes the stream's events and leaves a tombstone; open subscriptions that
    /// name it end, and reconnects get 204 so EventSource stops retrying.
    func deleteStream(context: RewindRequestContext) async throws -> Response {
        try context.access.requireAdmin("delete a stream")
        let name = try streamName(context)
        guard try await log.deleteStream(name.rawValue) else {
            switch try await log.status(ofStream: name.rawValue) {
            case .deleted(let time): throw Problem(.gone, "stream \(name) was deleted at \(time)", field: "stream")
            default: throw Problem(.notFound, "stream \(name) has no events", field: "stream")
            }
        }
        // The store has announced the deletion (its subscriptions end) and dropped the deleted events from the
        // window, through the path that carries other processes' deletions.
        context.logger.notice("stream deleted", metadata: ["stream.name": "\(name)"])
        return Response(status: .noContent)
    }

    /// `GET /readyz`: 200 while the store takes writes, 503 otherwise.
    func ready() async throws -> Response {
        // A node that has not heard other nodes' commits for longer than the grace still serves them through its
        // poll, but late: a load balancer should send clients elsewhere until it listens again. Checked first: it
        // costs no I/O, and a node cut off from PostgreSQL would otherwise wait for its write probe to give up.
        if case .down(let since, let reason) = log.following, ContinuousClock.now - since > configuration.listenerGrace {
            throw Problem(
                .serviceUnavailable,
                "not hearing other nodes' commits for \((ContinuousClock.now - since).components.seconds) s: \(reason)"
            )
        }
        do {
            try await log.checkWritable()
        } catch {
            throw Problem(.serviceUnavailable, "store is not writable: \(error)")
        }
        return jsonResponse(.ok) { json in
            json.beginObject()
            json.key("status")
            json.string("ready")
            json.key("head")
            json.int(log.commits.head)
            json.key("node")
            json.string(configuration.nodeName)
            json.key("following")
            switch log.following {
            case .polling: json.string("polling")
            case .listening: json.string("listening")
            case .down: json.string("reconnecting")
            }
            json.endObject()
        }
    }

    private func write(_ stream: StreamInfo, to json: inout JSONWriter) {
        json.beginObject()
        json.key("name")
        json.string(stream.name)
        json.key("count")
        json.int(stream.count)
        json.key("first_id")
        json.int(stream.firstID)
        json.key("last_id")
        json.int(stream.lastID)
        json.key("last_time")
        json.string(stream.lastTime.description)
        json.key("bytes")
        json.int(stream.bytes)
        json.endObject()
    }
}
