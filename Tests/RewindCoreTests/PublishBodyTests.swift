import RewindCore
import Testing

@Suite("Publish bodies")
struct PublishBodyTests {
    func parse(
        _ body: String,
        _ contentType: String?,
        type: String? = nil,
        limits: PublishLimits = PublishLimits()
    ) throws(ValidationError) -> [NewEvent] {
        try PublishBody.parse(Array(body.utf8), contentType: contentType, typeParameter: type, limits: limits)
    }

    @Test func jsonObjectWithStringData() throws {
        let events = try parse(#"{"type": "order.created", "data": "line\nnext \u00e9 \ud83d\ude80"}"#, "application/json")
        #expect(events == [NewEvent(type: try EventType(validating: "order.created"), data: "line\nnext é 🚀", isJSON: false)])
    }

    @Test func jsonValueDataIsKeptAsCompactText() throws {
        let body = #"{ "data" : { "z" : 1.50 , "a" : [ true , null , "x\"y" ] , "big": 12345678901234567890123 } }"#
        let events = try parse(body, "application/json; charset=utf-8")
        #expect(events == [NewEvent(data: #"{"z":1.50,"a":[true,null,"x\"y"],"big":12345678901234567890123}"#, isJSON: true)])
        #expect(try parse(#"{"data": 42}"#, "application/json")[0].data == "42")
        #expect(try parse(#"{"data": null}"#, "application/json")[0] == NewEvent(data: "null", isJSON: true))
    }

    @Test func jsonArrayIsABatchInOrder() throws {
        let events = try parse(#"[{"data": "a"}, {"type": "t", "data": "b"}, {"data": [1]}]"#, "application/json")
        #expect(events.map(\.data) == ["a", "b", "[1]"])
        #expect(events.map(\.type.rawValue) == ["message", "t", "message"])
    }

    @Test func ndjsonLinesSkippingBlankOnes() throws {
        let events = try parse("{\"data\": \"a\"}\n\n{\"data\": {\"k\": 1}}\r\n{\"type\":\"x\",\"data\":\"c\"}\n", "application/x-ndjson")
        #expect(events.map(\.data) == ["a", #"{"k":1}"#, "c"])
    }

    @Test func textBodyIsTheData() throws {
        let events = try parse("raw\r\ntext ✓", "text/plain; charset=UTF-8", type: "note")
        #expect(events == [NewEvent(type: try EventType(validating: "note"), data: "raw\r\ntext ✓")])
        #expect(try parse("x", "text/markdown")[0].type == .message)
    }

    struct Refusal: Sendable, CustomTestStringConvertible {
        var body: String
        var contentType: String?
        var type: String? = nil
        var kind: ValidationError.Kind
        var field: String
        var testDescription: String { "\(contentType ?? "none"): \(body.prefix(40)) -> \(field)" }
    }

    static let refusals: [Refusal] = [
        Refusal(body: "{}", contentType: nil, kind: .unsupportedMediaType, field: "Content-Type"),
        Refusal(body: "<a/>", contentType: "application/xml", kind: .unsupportedMediaType, field: "Content-Type"),
        Refusal(body: "x", contentType: "text/plain; charset=iso-8859-1", kind: .unsupportedMediaType, field: "Content-Type"),
        Refusal(body: "", contentType: "application/json", kind: .malformed, field: "body"),
        Refusal(body: "{", contentType: "application/json", kind: .malformed, field: "body"),
        Refusal(body: "{\"data\": \"a\"} x", contentType: "application/json", kind: .malformed, field: "body"),
        Refusal(body: "\"just a string\"", contentType: "application/json", kind: .malformed, field: "body"),
        Refusal(body: "[]", contentType: "application/json", kind: .malformed, field: "body"),
        Refusal(body: "[{\"data\": 1}, 2]", contentType: "application/json", kind: .malformed, field: "events[1]"),
        Refusal(body: "{\"type\": \"x\"}", contentType: "application/json", kind: .malformed, field: "data"),
        Refusal(body: "[{\"data\": 1}, {\"dat\": 1}]", contentType: "application/json", kind: .malformed, field: "events[1].dat"),
        Refusal(body: "{\"data\": 1, \"data\": 2}", contentType: "application/json", kind: .malformed, field: "data"),
        Refusal(body: "{\"type\": 5, \"data\": 1}", contentType: "application/json", kind: .malformed, field: "type"),
        Refusal(body: "{\"type\": \"bad type\", \"data\": 1}", contentType: "application/json", kind: .malformed, field: "type"),
        Refusal(body: "{\"type\": \"rewind.gap\", \"data\": 1}", contentType: "application/json", kind: .malformed, field: "type"),
        Refusal(body: "{\"data\": \"\\ud800\"}", contentType: "application/json", kind: .malformed, field: "body"),
        Refusal(body: "{\"data\": \"\\x\"}", contentType: "application/json", kind: .malformed, field: "body"),
        Refusal(body: "{\"data\": \"tab\there\"}", contentType: "application/json", kind: .malformed, field: "body"),
        Refusal(body: "{\"data\": 01}", contentType: "application/json", kind: .malformed, field: "body"),
        Refusal(body: "{\"data\": [1,]}", contentType: "application/json", kind: .malformed, field: "body"),
        Refusal(body: "{\"data\": tru}", contentType: "application/json", kind: .malformed, field: "body"),
        Refusal(
            body: "{\"data\": " + String(repeating: "[", count: 300) + String(repeating: "]", count: 300) + "}",
            contentType: "application/json",
            kind: .malformed,
            field: "body"
        ),
        Refusal(body: "{\"data\": 1}\n[1]\n", contentType: "application/x-ndjson", kind: .malformed, field: "line 2"),
        Refusal(body: "{\"data\": 1}\n{\"data\": }\n", contentType: "application/x-ndjson", kind: .malformed, field: "line 2"),
        Refusal(body: "\n\n", contentType: "application/x-ndjson", kind: .malformed, field: "body"),
        Refusal(body: "{\"data\": 1}", contentType: "application/json", type: "t", kind: .malformed, field: "type"),
        Refusal(body: "x", contentType: "text/plain", type: "rewind.reset", kind: .malformed, field: "type"),
        Refusal(body: "x", contentType: "text/plain", type: "", kind: .malformed, field: "type"),
    ]

    @Test("every bad body is refused, naming what is wrong", arguments: refusals)
    func refused(_ refusal: Refusal) {
        #expect {
            try parse(refusal.body, refusal.contentType, type: refusal.type)
        } throws: { error in
            guard let error = error as? ValidationError else { return false }
            return error.kind == refusal.kind && error.field == refusal.field && !error.detail.isEmpty
        }
    }

    @Test func nonUTF8IsUnsupported() {
        for contentType in ["text/plain", "application/json", "application/x-ndjson"] {
            #expect(throws: ValidationError(.unsupportedMediaType, field: "body", "request body is not valid UTF-8")) {
                try PublishBody.parse([0x7B, 0xFF, 0xFE, 0x7D], contentType: contentType, typeParameter: nil)
            }
        }
    }

    @Test func limits() throws {
        let limits = PublishLimits(maxEventBytes: 4, maxBatchEvents: 2)
        #expect(try parse(#"{"data": "abcd"}"#, "application/json", limits: limits).count == 1)
        #expect(try parse("{\"data\": \"a\"}\n{\"data\": \"b\"}", "application/x-ndjson", limits: limits).count == 2)
        for (body, type) in [(#"{"data": "abcde"}"#, "application/json"), ("abcde", "text/plain"), (#"{"data": [1,2,3]}"#, "application/json")] {
            #expect {
                try parse(body, type, limits: limits)
            } throws: { ($0 as? ValidationError)?.kind == .tooLarge }
        }
        for (body, type) in [
            (#"[{"data": 1}, {"data": 2}, {"data": 3}]"#, "application/json"),
            ("{\"data\": 1}\n{\"data\": 1}\n{\"data\": 1}", "application/x-ndjson"),
        ] {
            #expect {
                try parse(body, type, limits: limits)
            } throws: { ($0 as? ValidationError)?.kind == .tooLarge && ($0 as? ValidationError)?.field == "body" }
        }
    }
}
