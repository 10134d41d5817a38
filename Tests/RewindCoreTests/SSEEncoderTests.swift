import RewindCore
import Testing

@Suite("SSE frames")
struct SSEEncoderTests {
    /// Payloads and the data a WHATWG parser must deliver for them: line endings become LF, nothing else changes.
    static let payloads: [(data: String, expected: String)] = [
        ("plain", "plain"),
        ("", ""),
        ("two\nlines", "two\nlines"),
        ("carriage\rreturn", "carriage\nreturn"),
        ("crlf\r\nline", "crlf\nline"),
        ("trailing newline\n", "trailing newline\n"),
        ("\n\n", "\n\n"),
        ("\r\n\r\n", "\n\n"),
        ("\r\r", "\n\n"),
        ("\n\r", "\n\n"),
        (" leading space", " leading space"),
        ("ünïcødé ✓ 日本語 🚀 \u{2028} \u{0085} end", "ünïcødé ✓ 日本語 🚀 \u{2028} \u{0085} end"),
        ("nul \u{0} inside", "nul \u{0} inside"),
        ("x\n\nevent: forged\nid: 999\ndata: evil", "x\n\nevent: forged\nid: 999\ndata: evil"),
        ("x\r\rid: 5\r\revent: forged", "x\n\nid: 5\n\nevent: forged"),
        ("x\r\n\r\nretry: 1\r\n\r\n: comment", "x\n\nretry: 1\n\n: comment"),
        ("data: nested\n\nid: 1", "data: nested\n\nid: 1"),
    ]

    @Test("data survives any line ending and cannot forge a field", arguments: payloads)
    func roundTrip(payload: (data: String, expected: String)) {
        let stream = frames((41, "order.created", payload.data), (42, "message", "after"))
        var parser = SSEParser()
        let messages = parser.feed(stream)
        #expect(
            messages == [
                SSEParser.Message(type: "order.created", data: payload.expected, lastEventID: "41"),
                SSEParser.Message(type: "message", data: "after", lastEventID: "42"),
            ]
        )
        #expect(parser.lastEventID == "42")
    }

    @Test("frames parse the same however the bytes are split", arguments: payloads)
    func splitAnywhere(payload: (data: String, expected: String)) {
        let stream = frames((7, "t", payload.data), (8, "message", "z"))
        var whole = SSEParser()
        let expected = whole.feed(stream)
        for cut in 0...stream.count {
            var parser = SSEParser()
            let messages = parser.feed(stream[..<cut]) + parser.feed(stream[cut...])
            #expect(messages == expected, "split at byte \(cut)")
        }
    }

    /// Frames as the server writes them, one after another.
    private func frames(_ frames: (id: Int64, type: String, data: String)...) -> [UInt8] {
        var out: [UInt8] = []
        for frame in frames { SSEEncoder.appendFrame(id: frame.id, type: frame.type, data: frame.data, to: &out) }
        return out
    }

    /// One frame as the server writes it, as text.
    private func frame(id: Int64, type: String, data: String) -> String {
        String(decoding: frames((id, type, data)), as: UTF8.self)
    }

    @Test("message type is left out, others are named")
    func eventLine() {
        #expect(frame(id: 1, type: "message", data: "a") == "id: 1\ndata: a\n\n")
        #expect(
            frame(id: 12, type: "order.created", data: "a\nb")
                == "id: 12\nevent: order.created\ndata: a\ndata: b\n\n"
        )
        #expect(
            frame(id: 3, type: "message", data: "a\r\nb\rc") == "id: 3\ndata: a\ndata: b\ndata: c\n\n"
        )
    }

    @Test(
        "ids are written in decimal at every length",
        arguments: [0, 7, 9, 10, 99, 100, 1_000_001, 999_999_999_999, Int64.max, -1, Int64.min] as [Int64]
    )
    func decimalIDs(id: Int64) {
        #expect(frame(id: id, type: "message", data: "x") == "id: \(id)\ndata: x\n\n")
    }

    @Test("comments and retry stay on one line")
    func commentAndRetry() {
        var out: [UInt8] = []
        SSEEncoder.appendRetry(milliseconds: 2500, to: &out)
        SSEEncoder.appendComment("hello\nid: 3", to: &out)
        #expect(String(decoding: out, as: UTF8.self) == "retry: 2500\n: hello id: 3\n")
        var parser = SSEParser()
        #expect(parser.feed(out + [0x0A]).isEmpty)
        #expect(parser.retry == 2500)
        #expect(parser.lastEventID == "")
    }
}
