import Foundation
import GRDB
import NIOHTTP1
import RewindCore
import RewindServer
import RewindStore
import RewindTestSupport
import Testing

@Suite("Publish API")
struct PublishTests {
    @Test(arguments: Backend.all) func everyFormCommitsWithIncreasingIdsAcrossStreams(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let object = try await server.publish("orders", #"{"type": "order.created", "data": {"id": 1, "total": 9.50}}"#)
            #expect(object.status == 201)
            #expect(object.headers["Location"].first == "/v1/streams/orders/events/1")
            #expect(object.object["ids"] as? [Int] == [1])
            #expect(object.object["stream"] as? String == "orders")
            #expect(object.headers["Content-Type"].first == "application/json")
            let time = try #require(object.object["time"] as? String)
            #expect(Timestamp(rfc3339: time) != nil && time.hasSuffix("Z") && time.count == 27)

            let array = try await server.publish("billing", #"[{"data": "a"}, {"type": "x", "data": "b"}]"#)
            #expect(array.status == 201)
            #expect(array.object["ids"] as? [Int] == [2, 3])
            #expect(array.object["first_id"] as? Int == 2 && array.object["last_id"] as? Int == 3)

            let ndjson = try await server.publish("orders", "{\"data\": \"c\"}\n{\"data\": [1, 2]}\n", contentType: "application/x-ndjson")
            #expect(ndjson.status == 201)
            #expect(ndjson.object["ids"] as? [Int] == [4, 5])

            let text = try await server.publish("orders", "hello\nworld", contentType: "text/plain", query: "?type=note")
            #expect(text.status == 201)
            #expect(text.object["ids"] as? [Int] == [6])

            let read = try await server.request(.GET, "/v1/streams/orders/events?after=0", headers: [("Accept", "application/json")])
            let events = try #require(read.object["events"] as? [[String: Any]])
            #expect(events.map { $0["id"] as? Int } == [1, 4, 5, 6])
            #expect(events.map { $0["type"] as? String } == ["order.created", "message", "message", "note"])
            // JSON data comes back as JSON, text as text.
            #expect((events[0]["data"] as? [String: Any])?["id"] as? Int == 1)
            #expect(events[1]["data"] as? String == "c")
            #expect(events[2]["data"] as? [Int] == [1, 2])
            #expect(events[3]["data"] as? String == "hello\nworld")
            #expect(read.object["head"] as? Int == 6)
            #expect(read.object["next_after"] as? Int == 6)
        }
    }

    struct BadRequest: Sendable, CustomTestStringConvertible {
        var name: String
        var path = "/v1/streams/orders/events"
        var contentType: String?
        var body: [UInt8]
        var headers: [(String, String)] = []
        var status: Int
        var field: String
        var path2 = ""
        var testDescription: String { name }
    }

    static let badRequests: [BadRequest] = [
        BadRequest(
            name: "invalid stream name",
            path: "/v1/streams/-bad/events",
            contentType: "application/json",
            body: Array(#"{"data":1}"#.utf8),
            status: 400,
            field: "stream"
        ),
        BadRequest(
            name: "stream name too long",
            path: "/v1/streams/\(String(repeating: "s", count: 201))/events",
            contentType: "application/json",
            body: Array(#"{"data":1}"#.utf8),
            status: 400,
            field: "stream"
        ),
        BadRequest(name: "malformed JSON", contentType: "application/json", body: Array(#"{"data": "#.utf8), status: 400, field: "body"),
        BadRequest(
            name: "unknown member",
            contentType: "application/json",
            body: Array(#"{"data": 1, "extra": 2}"#.utf8),
            status: 400,
            field: "extra"
        ),
        BadRequest(name: "missing data", contentType: "application/json", body: Array(#"{"type": "a"}"#.utf8), status: 400, field: "data"),
        BadRequest(
            name: "reserved type",
            contentType: "application/json",
            body: Array(#"{"type": "rewind.gap", "data": 1}"#.utf8),
            status: 400,
            field: "type"
        ),
        BadRequest(
            name: "invalid type",
            contentType: "application/json",
            body: Array(#"{"type": "a b", "data": 1}"#.utf8),
            status: 400,
            field: "type"
        ),
        BadRequest(name: "empty batch", contentType: "application/json", body: Array("[]".utf8), status: 400, field: "body"),
        BadRequest(
            name: "bad event in batch",
            contentType: "application/json",
            body: Array(#"[{"data": 1}, {"data": 2, "typo": 1}]"#.utf8),
            status: 400,
            field: "events[1].typo"
        ),
        BadRequest(
            name: "bad NDJSON line",
            contentType: "application/x-ndjson",
            body: Array("{\"data\": 1}\nnot json\n".utf8),
            status: 400,
            field: "line 2"
        ),
        BadRequest(name: "bad type parameter", contentType: "text/plain", body: Array("x".utf8), status: 400, field: "type", path2: "?type=rewind.x"),
        BadRequest(
            name: "Idempotency-Key too long",
            contentType: "application/json",
            body: Array(#"{"data":1}"#.utf8),
            headers: [("Idempotency-Key", String(repeating: "k", count: 201))],
            status: 400,
            field: "Idempotency-Key"
        ),
        BadRequest(
            name: "Idempotency-Key with spaces",
            contentType: "application/json",
            body: Array(#"{"data":1}"#.utf8),
            headers: [("Idempotency-Key", "a b")],
            status: 400,
            field: "Idempotency-Key"
        ),
        BadRequest(name: "no Content-Type", contentType: nil, body: Array(#"{"data":1}"#.utf8), status: 415, field: "Content-Type"),
        BadRequest(name: "unsupported media type", contentType: "application/xml", body: Array("<a/>".utf8), status: 415, field: "Content-Type"),
        BadRequest(name: "non-UTF-8 charset", contentType: "text/plain; charset=latin1", body: Array("x".utf8), status: 415, field: "Content-Type"),
        BadRequest(name: "non-UTF-8 text", contentType: "text/plain", body: [0x61, 0xC3, 0x28], status: 415, field: "body"),
        BadRequest(
            name: "non-UTF-8 JSON",
            contentType: "application/json",
            body: Array(#"{"data": ""#.utf8) + [0xFF] + Array(#""}"#.utf8),
            status: 415,
            field: "body"
        ),
        BadRequest(
            name: "event over the size limit",
            contentType: "text/plain",
            body: Array(repeating: 0x61, count: 1025),
            status: 413,
            field: "data"
        ),
        BadRequest(
            name: "JSON event over the size limit",
            contentType: "application/json",
            body: Array("{\"data\": \"\(String(repeating: "a", count: 1025))\"}".utf8),
            status: 413,
            field: "data"
        ),
        BadRequest(
            name: "batch over the count limit",
            contentType: "application/x-ndjson",
            body: Array(String(repeating: "{\"data\": 1}\n", count: 11).utf8),
            status: 413,
            field: "body"
        ),
        BadRequest(
            name: "body over the size limit",
            contentType: "application/x-ndjson",
            body: Array(String(repeating: "{\"data\": \"\(String(repeating: "b", count: 500))\"}\n", count: 9).utf8),
            status: 413,
            field: "body"
        ),
    ]

    @Test("bad input is refused with its status, naming the field, writing nothing", arguments: Backend.all, badRequests)
    func refused(backend: Backend, _ bad: BadRequest) async throws {
        try await withRewind(
            backend,
            { configuration in
                configuration.publishLimits = PublishLimits(maxEventBytes: 1024, maxBatchEvents: 10)
                configuration.maxBodyBytes = 4096
            }
        ) { server in
            _ = try await server.publishTexts("orders", ["before"])
            var headers = bad.headers
            if let contentType = bad.contentType { headers.append(("Content-Type", contentType)) }
            let reply = try await server.request(.POST, bad.path + bad.path2, headers: headers, body: bad.body)
            #expect(reply.status == bad.status, "\(reply.body)")
            #expect(reply.headers["Content-Type"].first == "application/problem+json")
            let problem = reply.object
            #expect(problem["status"] as? Int == bad.status)
            #expect(problem["field"] as? String == bad.field)
            // SPEC §2: the detail itself names the offending field or header, for a person reading only the detail.
            #expect((problem["detail"] as? String)?.contains(bad.field) == true, "\(reply.body)")
            #expect(problem["title"] is String && problem["type"] is String)
            // Nothing of a refused request is in the log.
            let after = try await server.request(.GET, "/v1/streams", headers: [])
            let streams = try #require(after.json as? [[String: Any]])
            #expect(streams.count == 1 && streams[0]["count"] as? Int == 1 && streams[0]["last_id"] as? Int == 1)
        }
    }

    @Test func storeUnavailableIs503AndWritesNothing() async throws {
        try await withRewind({ $0.store.busyTimeout = .milliseconds(200) }) { server in
            _ = try await server.publishTexts("orders", ["before"])
            // Another connection holding the write lock makes the store unable to commit.
            let lock = try WriteLockHolder(path: server.databasePath)
            let reply = try await server.publish("orders", #"[{"data": 1}, {"data": 2}]"#)
            #expect(reply.status == 503, "\(reply.body)")
            #expect(reply.headers["Content-Type"].first == "application/problem+json")
            let ready = try await server.request(.GET, "/readyz")
            #expect(ready.status == 503)
            lock.release()
            #expect(try await server.request(.GET, "/readyz").status == 200)
            #expect(try await server.history("orders").map(\.data) == ["before"])
            // The log goes on with the next id once the store is back.
            #expect(try await server.publishTexts("orders", ["after"]) == [2])
        }
    }

    @Test(arguments: Backend.all) func idempotencyKeyAppendsOnce(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let first = try await server.publish("orders", #"[{"data": 1}, {"data": 2}]"#, headers: [("Idempotency-Key", "order-77")])
            #expect(first.status == 201)
            #expect(first.headers["Idempotent-Replayed"].isEmpty)
            let again = try await server.publish("orders", #"[{"data": 1}, {"data": 2}]"#, headers: [("Idempotency-Key", "order-77")])
            #expect(again.status == 200)
            #expect(again.headers["Idempotent-Replayed"].first == "true")
            #expect(again.object["ids"] as? [Int] == first.object["ids"] as? [Int])
            #expect(again.object["time"] as? String == first.object["time"] as? String)
            #expect(again.headers["Location"].first == first.headers["Location"].first)
            // The key is per stream.
            let elsewhere = try await server.publish("billing", #"{"data": 3}"#, headers: [("Idempotency-Key", "order-77")])
            #expect(elsewhere.status == 201)
            #expect(try await server.history("orders").map(\.id) == [1, 2])
        }
    }

    @Test(arguments: Backend.all) func concurrentDuplicatesAppendOnce(backend: Backend) async throws {
        try await withRewind(backend) { server in
            for round in 0..<5 {
                let key = "dup-\(round)"
                let replies = try await withThrowingTaskGroup(of: TestServer.Reply.self) { group in
                    for _ in 0..<24 {
                        group.addTask { try await server.publish("orders", #"[{"data": "x"}, {"data": "y"}]"#, headers: [("Idempotency-Key", key)]) }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(replies.filter { $0.status == 201 }.count == 1)
                #expect(replies.filter { $0.status == 200 && $0.headers["Idempotent-Replayed"].first == "true" }.count == 23)
                let idSets = Set(replies.map { $0.object["ids"] as? [Int] ?? [] })
                #expect(idSets.count == 1)
            }
            #expect(try await server.history("orders").count == 10)
        }
    }

    @Test(arguments: Backend.all) func concurrentPublishersGetUniqueConsecutiveIds(backend: Backend) async throws {
        try await withRewind(backend) { server in
            let results = try await withThrowingTaskGroup(of: [Int].self) { group in
                for task in 0..<16 {
                    group.addTask {
                        var ids: [Int] = []
                        for n in 0..<20 {
                            let count = (task + n) % 3 + 1
                            let body = "[" + (0..<count).map { "{\"data\": \"\(task)-\(n)-\($0)\"}" }.joined(separator: ",") + "]"
                            let reply = try await server.publish("s\(task % 4)", body)
                            let batch = reply.object["ids"] as? [Int] ?? []
                            #expect(reply.status == 201 && batch.count == count)
                            #expect(batch == Array((batch.first ?? 0)..<((batch.first ?? 0) + count)), "a batch's ids are consecutive")
                            ids += batch
                        }
                        return ids
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(Set(results).count == results.count)
            #expect(results.sorted() == Array(1...results.count))
        }
    }
}

/// Holds SQLite's write lock on a database from a connection of its own, on a thread of its own, until released.
final class WriteLockHolder: Sendable {
    private let releaseSignal = DispatchSemaphore(value: 0)

    init(path: String) throws {
        let queue = try DatabaseQueue(path: path)
        let locked = DispatchSemaphore(value: 0)
        let release = releaseSignal
        Thread {
            try? queue.write { db in
                try db.execute(sql: "UPDATE streams SET count = count")
                locked.signal()
                release.wait()
            }
        }.start()
        locked.wait()
    }

    func release() { releaseSignal.signal() }
}
