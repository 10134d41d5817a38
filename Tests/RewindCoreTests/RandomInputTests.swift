import Foundation
import RewindCore
import RewindTestSupport
import Testing

/// Properties checked against thousands of random inputs per run; each run draws a new seed, printed with any
/// failure (set `REWIND_TEST_SEED` to replay one).
@Suite("Random inputs")
struct RandomInputTests {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["REWIND_TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)

    /// Pieces that stress SSE framing and JSON: line endings, NUL, field names, quotes, escapes, multi-byte text.
    static let fragments: [String] = [
        "\n", "\r", "\r\n", "\n\n", "\r\r", "\u{0}", "data: ", "id: 7", "event: forged", "retry: 1", ":", " ", "\"", "\\", "\\u0000",
        "\\ud800", "{", "}", "[", "]", ",", "é", "日本", "🚀", "\u{2028}", "\u{FEFF}", "\u{85}", "\t", "x", "abc", "null", "true", "1e308",
    ]

    static func randomText(_ random: inout SeededRandom, maxPieces: Int = 40) -> String {
        var text = ""
        for _ in 0..<random.below(maxPieces + 1) {
            switch random.below(400) {
            case 0: text += String(repeating: "L", count: random.below(70_000))  // a huge line now and then
            case 1..<40: text += String(UnicodeScalar(UInt8(random.below(128))))
            default: text += fragments[random.below(fragments.count)]
            }
        }
        return text
    }

    static let structural = Array("{}[]\":,\n\r\\ datatype".utf8)

    static func randomBytes(_ random: inout SeededRandom) -> [UInt8] {
        (0..<random.below(400)).map { _ in
            // Many structure-bearing bytes, so parsers get past their first check now and then.
            random.below(3) == 0 ? structural[random.below(structural.count)] : UInt8(random.below(256))
        }
    }

    @Test func sseFramesCarryAnyTextAndForgeNothing() {
        var random = SeededRandom(seed: Self.seed)
        for round in 0..<3000 {
            let frames = (0..<(1 + random.below(4))).map { index in
                (id: Int64(round * 10 + index + 1), type: random.below(2) == 0 ? "message" : "t.\(random.below(100))", data: Self.randomText(&random))
            }
            var stream: [UInt8] = []
            for frame in frames { SSEEncoder.appendFrame(id: frame.id, type: frame.type, data: frame.data, to: &stream) }
            var parser = SSEParser()
            // Fed in random pieces, as a socket delivers them.
            var messages: [SSEParser.Message] = []
            var offset = 0
            while offset < stream.count {
                let end = min(stream.count, offset + 1 + random.below(5000))
                messages += parser.feed(stream[offset..<end])
                offset = end
            }
            let expected = frames.map { frame in
                SSEParser.Message(
                    type: frame.type,
                    data: frame.data.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n"),
                    lastEventID: String(frame.id)
                )
            }
            #expect(messages == expected, "seed \(Self.seed), round \(round)")
            if messages != expected { return }
        }
    }

    @Test func sseFramesOfRawBytesNeverForgeAFrame() {
        var random = SeededRandom(seed: Self.seed &+ 1)
        for round in 0..<3000 {
            let data = Self.randomBytes(&random)
            var stream: [UInt8] = []
            let type = Array("t".utf8)
            type.withUnsafeBufferPointer { type in
                data.withUnsafeBufferPointer { SSEEncoder.appendFrame(id: 5, type: type, data: $0, to: &stream) }
            }
            var parser = SSEParser()
            let messages = parser.feed(stream)
            #expect(messages.count == 1 && messages.first?.lastEventID == "5" && messages.first?.type == "t", "seed \(Self.seed), round \(round)")
        }
    }

    @Test(arguments: ["application/json", "application/x-ndjson", "text/plain", "text/plain; charset=latin1", "application/xml", nil])
    func publishBodiesOfRandomBytesAreRefusedCleanlyOrValid(contentType: String?) {
        var random = SeededRandom(seed: Self.seed &+ 2)
        let limits = PublishLimits(maxEventBytes: 300, maxBatchEvents: 5)
        for round in 0..<2000 {
            let body = Self.randomBytes(&random)
            do {
                let events = try PublishBody.parse(body, contentType: contentType, typeParameter: nil, limits: limits)
                // Whatever is accepted is within the limits, and is text a subscriber can be sent.
                #expect(!events.isEmpty && events.count <= 5, "seed \(Self.seed), round \(round)")
                for event in events {
                    #expect(event.data.utf8.count <= 300)
                    #expect(StreamName.isValidEventType(event.type.rawValue))
                }
            } catch {
                #expect(!error.detail.isEmpty && !error.field.isEmpty, "seed \(Self.seed), round \(round)")
                // SPEC §2: the detail names the field or header at fault.
                #expect(error.detail.contains(error.field), "seed \(Self.seed), round \(round): \(error.field) — \(error.detail)")
            }
        }
    }

    @Test func publishedJSONDataComesBackAsTheSameValue() throws {
        var random = SeededRandom(seed: Self.seed &+ 3)
        for round in 0..<2000 {
            let value = Self.randomJSON(&random, depth: 0)
            let body = try JSONSerialization.data(withJSONObject: ["type": "t", "data": value], options: [.fragmentsAllowed])
            let events = try PublishBody.parse(Array(body), contentType: "application/json", typeParameter: nil)
            try #require(events.count == 1, "seed \(Self.seed), round \(round)")
            if let text = value as? String {
                #expect(events[0].data == text && !events[0].isJSON, "seed \(Self.seed), round \(round)")
            } else {
                let back = try JSONSerialization.jsonObject(with: Data(events[0].data.utf8), options: [.fragmentsAllowed])
                #expect(try Self.canonical(back) == Self.canonical(value), "seed \(Self.seed), round \(round)")
                #expect(!events[0].data.contains("\n"), "kept as compact JSON")
            }
        }
    }

    /// One spelling per JSON value, to compare values that went through different parsers.
    static func canonical(_ value: Any) throws -> Data {
        try JSONSerialization.data(withJSONObject: ["v": value], options: [.sortedKeys, .fragmentsAllowed])
    }

    /// Foundation's JSON parser, which the comparison uses, drops U+FEFF inside strings; the SSE properties carry it.
    static func jsonText(_ random: inout SeededRandom) -> String {
        randomText(&random, maxPieces: 8).replacingOccurrences(of: "\u{FEFF}", with: "")
    }

    static func randomJSON(_ random: inout SeededRandom, depth: Int) -> Any {
        switch random.below(depth > 3 ? 4 : 6) {
        case 0: return jsonText(&random)
        case 1: return random.below(1_000_000) - 500_000
        case 2: return random.below(2) == 0
        case 3: return NSNull()
        case 4: return (0..<random.below(4)).map { _ in randomJSON(&random, depth: depth + 1) }
        default:
            var object: [String: Any] = [:]
            for _ in 0..<random.below(4) { object[jsonText(&random)] = randomJSON(&random, depth: depth + 1) }
            return object
        }
    }
}
