import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOHTTP1
import RewindAdmin
import RewindCore
import RewindServer
import RewindStore
import RewindTestSupport
import Testing

/// Every way out of the log gives back what went in: arbitrary Unicode text, published as `text/plain` and as
/// JSON, read back through SSE (replay from the server's window, replay from the log, live), the JSON page, the
/// single-event GET, `rewind query` in every format and `export` → `import`. Each run draws new random texts
/// besides the fixed hard cases; the seed is printed with any failure (set `REWIND_TEST_SEED` to replay one).
@Suite("Every read path returns data byte for byte")
struct ExactDataTests {
    static let seed: UInt64 = ProcessInfo.processInfo.environment["REWIND_TEST_SEED"].flatMap(UInt64.init) ?? UInt64.random(in: 1...UInt64.max)

    /// The largest text a default server takes is `PublishLimits().maxEventBytes` bytes (1 MiB, inclusive); one
    /// byte under it, with the hard characters inside, so a limit or a buffer off by one shows.
    static let nearLimitBytes = PublishLimits().maxEventBytes - 1

    /// Texts every run sends: NUL anywhere, lone CR, CRLF, the Unicode line separators, a BOM, 4-byte characters,
    /// combining marks after CSV's special characters, escapes spelled out, a long line and one of 1 MiB − 1 byte.
    static let hardCases: [String] = [
        "a\u{0}b", "\u{0}", "\u{0}\u{0}tail\u{0}", "lone\rcarriage return", "crlf\r\nthen\r\n", "\r\n\r\n", "\r", "\n", "\n\n\r\r",
        "\u{2028}line\u{2029}paragraph\u{85}next line", "\u{FEFF}starts with a BOM", "in\u{FEFF}side", "🚀𝄞😀 four bytes each 🇪🇺", "",
        "  spaces around  ", "\t\u{7F}\u{1B}[31mescape\u{1B}[0m", #"quote " comma , backslash \ \u0000 \n"#, "e\u{301} vs \u{E9}",
        ",\u{301}", "\"\u{301}", "data: forged\nid: 999\nevent: x\n\nretry: 1", String(repeating: "long line ", count: 7_000),
        nearLimit(),
    ]

    static func nearLimit() -> String {
        var text = "\u{0}\r\r\n\u{2028}\u{FEFF}🚀"
        let filler = String(repeating: "0123456789abcdef", count: 1024) + "\u{0}😀\r\n"
        while text.utf8.count + filler.utf8.count <= nearLimitBytes { text += filler }
        text += String(repeating: "x", count: nearLimitBytes - text.utf8.count)
        return text
    }

    static let fragments: [String] = [
        "\u{0}", "\r", "\n", "\r\n", "\u{2028}", "\u{2029}", "\u{FEFF}", "\u{85}", "\t", "\u{7F}", "\u{1}", "\u{1F}", "\"", "\\", ",",
        "\\u0000", "é", "e\u{301}", "\u{301}", "日本", "🚀", "𝄞", "\u{10FFFF}", "\u{E000}", "data: ", "id: 1", ": ", " ", "x", "{\"a\":1}",
    ]

    /// Arbitrary text: the fragments above and random scalars from every plane (no surrogates: not text).
    static func randomText(_ random: inout SeededRandom) -> String {
        var text = ""
        for _ in 0..<random.below(60) {
            switch random.below(100) {
            case 0: text += String(repeating: "L", count: random.below(100_000))
            case 1..<40:
                let ranges: [ClosedRange<UInt32>] = [0...0x7F, 0x80...0x7FF, 0x800...0xD7FF, 0xE000...0xFFFF, 0x10000...0x10FFFF]
                let range = ranges[random.below(ranges.count)]
                text.unicodeScalars.append(Unicode.Scalar(range.lowerBound + UInt32(random.below(Int(range.upperBound - range.lowerBound) + 1)))!)
            default: text += fragments[random.below(fragments.count)]
            }
        }
        return text
    }

    @Test func everyReadPathReturnsTheTextPublished() async throws {
        do {
            try await withTimeLimit(.seconds(120)) { try await Self.checkEveryReadPath() }
        } catch {
            Issue.record("\(error) (seed \(Self.seed); REWIND_TEST_SEED=\(Self.seed) replays the run)")
        }
    }

    static func checkEveryReadPath() async throws {
        var random = SeededRandom(seed: Self.seed)
        let texts = Self.hardCases + (0..<6).map { _ in Self.randomText(&random) }
        let bodies = texts.map { (text: $0, plain: Array($0.utf8), json: Self.jsonBody($0, &random)) }
        let directory = try TemporaryDirectory()
        let path = directory.path("exact.sqlite")
        let context = "seed \(Self.seed)"

        // id → the text it carries, and that text as SSE delivers it.
        let (sent, delivered) = try await withExactServer(at: path) { server in
            // Live: the subscriber is open (its first bytes arrived) before anything is published.
            var live = try await server.openSSE("/v1/streams/exact/events?from=latest&limit=\(texts.count * 2)")
            var sent: [Int64: String] = [:]
            for body in bodies {
                sent[try await server.publish("exact", body: body.plain, contentType: "text/plain; charset=utf-8")] = body.text
                sent[try await server.publish("exact", body: body.json, contentType: "application/json")] = body.text
            }
            let delivered = sent.mapValues(Self.sseForm)
            Self.expectSSE(try await live.finish(), delivered, "SSE live, \(context)")
            Self.expectSSE(try await server.sse("/v1/streams/exact/events?after=0&live=false"), delivered, "SSE replay from the window, \(context)")

            var page: [Int64: String] = [:]
            var cursor: Int64 = 0
            while true {
                let events = try await server.json("/v1/streams/exact/events?after=\(cursor)&limit=7", as: Page.self).events
                guard let last = events.last else { break }
                for event in events { page[event.id] = event.data }
                cursor = last.id
            }
            Self.expectExact(page, sent, "JSON page, \(context)")

            var single: [Int64: String] = [:]
            for id in sent.keys { single[id] = try await server.json("/v1/streams/exact/events/\(id)", as: Page.Event.self).data }
            Self.expectExact(single, sent, "single-event GET, \(context)")
            return (sent, delivered)
        }
        // A new server over the same file starts with an empty window: its replay reads the log.
        try await withExactServer(at: path) { server in
            Self.expectSSE(try await server.sse("/v1/streams/exact/events?after=0&live=false"), delivered, "SSE replay from the log, \(context)")
        }

        try Self.expectQueryOutputs(path, sent, context)

        let exported = directory.path("exact.ndjson")
        let export = try rewind(["export", "--db", path, "--out", exported])
        #expect(export.status == 0, "export: \(export.stderr)")
        let copy = directory.path("imported.sqlite")
        let imported = try rewind(["import", "--db", copy, exported])
        #expect(imported.status == 0, "import: \(imported.stderr)")
        let verify = try rewind(["verify", "--db", copy])
        #expect(verify.status == 0, "verify after import: \(verify.stdout) \(verify.stderr)")
        let back = try LogReader(path: copy).events(EventQuery())
        Self.expectExact(Dictionary(uniqueKeysWithValues: back.map { ($0.event.id, $0.event.data) }), sent, "export → import, \(context)")
        var again: [UInt8] = []
        try await LogReader(path: copy).export { again += Array($0.utf8) }
        #expect(again == Array(try Data(contentsOf: URL(fileURLWithPath: exported))), "re-export of the import differs, \(context)")
    }

    /// `rewind query` through the built binary: json and ndjson exact, csv exact once its quoting is undone, table
    /// one line per event with control characters and line separators escaped.
    static func expectQueryOutputs(_ path: String, _ sent: [Int64: String], _ context: String) throws {
        func query(_ format: String) throws -> [UInt8] {
            let result = try rewind(["query", "--db", path, "--stream", "exact", "--limit", "0", "--format", format])
            #expect(result.status == 0, "query --format \(format): \(result.stderr)")
            return Array(result.stdout.utf8)
        }
        let array = try JSONDecoder().decode([Page.Event].self, from: Data(try query("json")))
        expectExact(dataByID(array), sent, "query --format json, \(context)")

        let lines = try query("ndjson").split(separator: 0x0A).map { try JSONDecoder().decode(Page.Event.self, from: Data($0)) }
        expectExact(dataByID(lines), sent, "query --format ndjson, \(context)")

        let csv = CSV.parse(try query("csv"))
        #expect(csv.first == ["id", "stream", "type", "data", "time", "key"], "query --format csv header, \(context)")
        let csvData = csv.dropFirst().map { (Int64($0[0])!, $0[3]) }
        expectExact(Dictionary(uniqueKeysWithValues: csvData), sent, "query --format csv, \(context)")

        let table = try query("table").split(separator: 0x0A, omittingEmptySubsequences: false).dropLast()
        #expect(table.count == sent.count + 1, "query --format table: one line per event, \(context)")
        // Everything before the data column is ASCII, so the header's offset of DATA is the data's offset in bytes.
        let header = try #require(table.first)
        let offset = try #require(header.indices.first { header[$0...].starts(with: "DATA".utf8) }) - header.startIndex
        var shown: [Int64: String] = [:]
        var expected: [Int64: String] = [:]
        for line in table.dropFirst() {
            let id = Int64(String(decoding: line.prefix { $0 != UInt8(ascii: " ") }, as: UTF8.self))!
            shown[id] = String(decoding: line.dropFirst(offset), as: UTF8.self)
            expected[id] = tableForm(sent[id] ?? "")
        }
        expectExact(shown, expected, "query --format table, \(context)")
    }

    /// The text as the table shows it: C0, DEL, C1 and U+2028/U+2029 escaped, everything else as is. Over bytes,
    /// as the test is built for debugging and a scalar at a time takes long over megabytes.
    static func tableForm(_ text: String) -> String {
        let bytes = Array(text.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        func escape(_ value: UInt32) { out += Array("\\u{\(String(value, radix: 16))}".utf8) }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case 0x0A: out += Array("\\n".utf8)
            case 0x0D: out += Array("\\r".utf8)
            case 0x09: out += Array("\\t".utf8)
            case 0..<0x20, 0x7F: escape(UInt32(byte))
            case 0xC2 where index + 1 < bytes.count && (0x80...0x9F).contains(bytes[index + 1]):
                escape(UInt32(bytes[index + 1]))
                index += 1
            case 0xE2 where index + 2 < bytes.count && bytes[index + 1] == 0x80 && (bytes[index + 2] == 0xA8 || bytes[index + 2] == 0xA9):
                escape(0x2000 + UInt32(bytes[index + 2] - 0x80))
                index += 2
            default: out.append(byte)
            }
            index += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func dataByID(_ events: [Page.Event]) -> [Int64: String] {
        Dictionary(events.map { ($0.id, $0.data) }, uniquingKeysWith: { first, _ in first })
    }

    /// A JSON page as a client decodes it. `JSONDecoder`, not `JSONSerialization`: on Linux the latter drops a BOM
    /// that begins a string.
    struct Page: Decodable {
        struct Event: Decodable {
            var id: Int64
            var data: String
        }
        var events: [Event]
    }

    /// Same ids, and for each the same UTF-8 bytes (`String`'s `==` would take "é" and "e\u{301}" as equal).
    static func expectExact(_ got: [Int64: String], _ sent: [Int64: String], _ what: String) {
        #expect(got.keys.sorted() == sent.keys.sorted(), "\(what): ids differ")
        for id in sent.keys.sorted() {
            let expected = Array(sent[id]!.utf8)
            let actual = Array((got[id] ?? "<missing>").utf8)
            guard actual != expected else { continue }
            let at = (0..<min(actual.count, expected.count)).first { actual[$0] != expected[$0] } ?? min(actual.count, expected.count)
            Issue.record("\(what): event \(id) differs at byte \(at) of \(expected.count) (got \(actual.count) bytes)")
            return
        }
    }

    /// SSE parsed with the project's WHATWG parser, against `expected` from `sseForm`.
    static func expectSSE(_ messages: [SSEParser.Message], _ expected: [Int64: String], _ what: String) {
        let got = Dictionary(messages.map { (Int64($0.lastEventID) ?? -1, $0.data) }, uniquingKeysWith: { first, _ in first })
        #expect(messages.count == expected.count, "\(what): \(messages.count) messages for \(expected.count) events")
        expectExact(got, expected, what)
    }

    /// The text as SSE delivers it: CR and CRLF become LF, which the format imposes (docs/http-api.md, "Subscribe").
    /// Byte by byte, since `String` searches treat CRLF as one character.
    static func sseForm(_ text: String) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count)
        var afterCR = false
        for byte in text.utf8 {
            defer { afterCR = byte == 0x0D }
            if afterCR, byte == 0x0A { continue }
            out.append(byte == 0x0D ? 0x0A : byte)
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// `{"data": "<text>"}`, each non-ASCII scalar at random raw or as `\u` escapes (surrogate pairs above the
    /// BMP), so the server's JSON string decoding is read back too.
    static func jsonBody(_ text: String, _ random: inout SeededRandom) -> [UInt8] {
        var out = Array(#"{"data": ""#.utf8)
        out.reserveCapacity(text.utf8.count * 2)
        let hex = Array("0123456789abcdef".utf8)
        func escape(_ unit: UInt16) {
            out += [
                UInt8(ascii: "\\"), UInt8(ascii: "u"), hex[Int(unit >> 12)], hex[Int(unit >> 8 & 0xF)], hex[Int(unit >> 4 & 0xF)],
                hex[Int(unit & 0xF)],
            ]
        }
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x22, 0x5C: out += [UInt8(ascii: "\\"), UInt8(scalar.value)]
            case 0..<0x20: escape(UInt16(scalar.value))
            case 0x20..<0x80: out.append(UInt8(scalar.value))
            default:
                if random.below(2) == 0 {
                    UTF16.encode(scalar) { escape($0) }
                } else {
                    UTF8.encode(scalar) { out.append($0) }
                }
            }
        }
        return out + Array("\"}".utf8)
    }
}

/// A minimal RFC 4180 reader over bytes: quoted fields with doubled quotes, CRLF record ends. It jumps from one
/// special byte to the next: the test is built for debugging, and a byte at a time takes long over megabytes.
enum CSV {
    static func parse(_ bytes: [UInt8]) -> [[String]] {
        let quote = UInt8(ascii: "\""), comma = UInt8(ascii: ",")
        var records: [[String]] = []
        var record: [String] = []
        var index = 0
        while index < bytes.count {
            var field: [UInt8] = []
            if bytes[index] == quote {
                index += 1
                while let close = bytes[index...].firstIndex(of: quote) {
                    field += bytes[index..<close]
                    index = close + 1
                    guard index < bytes.count, bytes[index] == quote else { break }
                    field.append(quote)
                    index += 1
                }
            } else {
                let end = bytes[index...].firstIndex { $0 == comma || $0 == 0x0D } ?? bytes.count
                field += bytes[index..<end]
                index = end
            }
            record.append(String(decoding: field, as: UTF8.self))
            if index < bytes.count, bytes[index] == comma {
                index += 1
            } else {
                records.append(record)
                record = []
                index += 2  // CRLF
            }
        }
        return records
    }
}
