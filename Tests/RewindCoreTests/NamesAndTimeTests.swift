import RewindCore
import Testing

@Suite("Names, cursors, times")
struct NamesAndTimeTests {
    @Test(arguments: ["a", "orders", "orders.eu", "A-b_c:d.e", "0", String(repeating: "x", count: 200)])
    func validStreamNames(_ name: String) throws {
        #expect(try StreamName(validating: name).rawValue == name)
    }

    @Test(arguments: ["", ".a", "-a", "a b", "a/b", "ä", "a*", String(repeating: "x", count: 201)])
    func invalidStreamNames(_ name: String) {
        #expect(throws: ValidationError.self) { try StreamName(validating: name) }
    }

    @Test func startPositionPrecedence() throws {
        #expect(
            try StartPosition.resolve(lastEventIDHeader: "5", after: "6", lastEventIDParameter: "7", from: "earliest", since: "2026-01-01T00:00:00Z")
                == .after(5)
        )
        #expect(try StartPosition.resolve(lastEventIDHeader: "", after: "6", lastEventIDParameter: "7", from: nil, since: nil) == .after(6))
        #expect(try StartPosition.resolve(lastEventIDHeader: nil, after: nil, lastEventIDParameter: "7", from: "latest", since: nil) == .after(7))
        #expect(
            try StartPosition.resolve(lastEventIDHeader: nil, after: nil, lastEventIDParameter: nil, from: "earliest", since: "2026-01-01T00:00:00Z")
                == .earliest
        )
        #expect(
            try StartPosition.resolve(lastEventIDHeader: nil, after: nil, lastEventIDParameter: nil, from: nil, since: "2026-01-01T00:00:00Z")
                == .since(Timestamp(rfc3339: "2026-01-01T00:00:00Z")!)
        )
        #expect(try StartPosition.resolve(lastEventIDHeader: nil, after: nil, lastEventIDParameter: nil, from: nil, since: nil) == .latest)
        #expect(
            try StartPosition.resolve(lastEventIDHeader: " ", after: nil, lastEventIDParameter: nil, from: nil, since: nil, otherwise: .earliest)
                == .earliest
        )
        #expect(StartPosition.lastEventID(header: " 12 ") == "12")
        #expect(StartPosition.lastEventID(header: " \t") == nil)
    }

    @Test(arguments: [
        ("Last-Event-ID", "-1"), ("Last-Event-ID", "abc"), ("after", "1.5"), ("after", "99999999999999999999"), ("after", ""), ("after", "+3"),
    ])
    func malformedCursors(field: String, value: String) {
        #expect {
            if field == "after" {
                _ = try StartPosition.resolve(lastEventIDHeader: nil, after: value, lastEventIDParameter: nil, from: nil, since: nil)
            } else {
                _ = try StartPosition.resolve(lastEventIDHeader: value, after: nil, lastEventIDParameter: nil, from: nil, since: nil)
            }
        } throws: { ($0 as? ValidationError)?.field == field }
    }

    @Test func timestampFormatting() {
        #expect(Timestamp(microseconds: 0).description == "1970-01-01T00:00:00.000000Z")
        #expect(Timestamp(microseconds: 1_795_219_200_123_456).description == "2026-11-21T00:00:00.123456Z")
        #expect(Timestamp(microseconds: 951_782_400_000_001).description == "2000-02-29T00:00:00.000001Z")
    }

    @Test func timestampParsing() {
        #expect(Timestamp(rfc3339: "2026-11-21T00:00:00.123456Z")?.microseconds == 1_795_219_200_123_456)
        #expect(Timestamp(rfc3339: "2026-11-21T02:00:00.5+02:00")?.microseconds == 1_795_219_200_500_000)
        #expect(Timestamp(rfc3339: "2026-11-20t19:00:00-05:00")?.microseconds == 1_795_219_200_000_000)
        for bad in ["2026-11-21", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-11-21T00:00:00", "2026-11-21T00:00:00.Z", "x"] {
            #expect(Timestamp(rfc3339: bad) == nil, "\(bad)")
        }
        for micros: Int64 in [0, 1, 999_999, 1_795_219_200_123_456, 4_102_444_800_000_000] {
            #expect(Timestamp(rfc3339: Timestamp(microseconds: micros).description)?.microseconds == micros)
        }
    }
}
