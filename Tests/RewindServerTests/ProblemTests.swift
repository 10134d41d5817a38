import Foundation
import NIOHTTP1
import RewindServer
import Testing

/// SPEC §2: every error is problem+json whose `detail` names the offending field or header, so a person reading only
/// the message knows what to change. Publish bodies are covered by `PublishTests.refused` and, over random bodies,
/// by `RandomInputTests`; these are the other inputs a client controls.
@Suite("Problems name their field")
struct ProblemTests {
    struct Case: Sendable, CustomStringConvertible {
        var path: String
        var headers: [(String, String)] = []
        var status: Int
        var field: String
        var description: String { "\(path) \(headers.map(\.0))" }
    }

    static let json = [("Accept", "application/json")]

    static let cases: [Case] = [
        Case(path: "/v1/streams/orders/events", headers: [("Last-Event-ID", "x")], status: 400, field: "Last-Event-ID"),
        Case(path: "/v1/streams/orders/events?after=-1", status: 400, field: "after"),
        Case(path: "/v1/streams/orders/events?last_event_id=1.5", status: 400, field: "last_event_id"),
        Case(path: "/v1/streams/orders/events?from=middle", status: 400, field: "from"),
        Case(path: "/v1/streams/orders/events?since=yesterday", status: 400, field: "since"),
        Case(path: "/v1/streams/orders/events?limit=0", status: 400, field: "limit"),
        Case(path: "/v1/streams/orders/events?live=maybe", status: 400, field: "live"),
        Case(path: "/v1/streams/orders/events?type=bad%20type", status: 400, field: "type"),
        Case(path: "/v1/streams/orders/events?wait=99", headers: json, status: 400, field: "wait"),
        // Over the maximum by less than a millisecond: still over it.
        Case(path: "/v1/streams/orders/events?wait=60.000000000000014", headers: json, status: 400, field: "wait"),
        Case(path: "/v1/events?stream=orders&live=false&wait=60.000000000000014", status: 400, field: "wait"),
        Case(path: "/v1/streams/orders/events?until=x", headers: json, status: 400, field: "until"),
        Case(path: "/v1/streams/orders/events?limit=100000", headers: json, status: 400, field: "limit"),
        Case(path: "/v1/streams/orders/events/abc", status: 400, field: "id"),
        Case(path: "/v1/streams/orders/events/99", status: 404, field: "id"),
        Case(path: "/v1/streams/bad%20name/events", status: 400, field: "stream"),
        Case(path: "/v1/streams/nothing", status: 404, field: "stream"),
        Case(path: "/v1/events?stream=a&stream=orders**", status: 400, field: "stream"),
        Case(path: "/v1/events", status: 400, field: "stream"),
    ]

    @Test(arguments: cases)
    func detailNamesTheField(_ bad: Case) async throws {
        try await withRewind { server in
            _ = try await server.publishTexts("orders", ["one"])
            let reply = try await server.request(.GET, bad.path, headers: bad.headers)
            #expect(reply.status == bad.status, "\(reply.body)")
            #expect(reply.headers["Content-Type"].first == "application/problem+json")
            #expect(reply.object["field"] as? String == bad.field, "\(reply.body)")
            #expect((reply.object["detail"] as? String)?.contains(bad.field) == true, "\(reply.body)")
        }
    }
}
