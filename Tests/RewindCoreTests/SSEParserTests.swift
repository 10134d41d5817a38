import RewindCore
import Testing

/// The parser the tests judge Rewind's streams with must itself follow the WHATWG algorithm.
@Suite("WHATWG SSE parser")
struct SSEParserTests {
    func parse(_ text: String) -> (messages: [SSEParser.Message], parser: SSEParser) {
        var parser = SSEParser()
        let messages = parser.feed(Array(text.utf8))
        return (messages, parser)
    }

    @Test func spec_examples() {
        // From the HTML standard's examples.
        let (a, _) = parse("data: YHOO\ndata: +2\ndata: 10\n\n")
        #expect(a == [.init(type: "message", data: "YHOO\n+2\n10", lastEventID: "")])
        let (b, p) = parse(": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\ndata:  third event\n")
        #expect(b == [.init(type: "message", data: "first event", lastEventID: "1"), .init(type: "message", data: "second event", lastEventID: "")])
        #expect(p.lastEventID == "")
        let (c, _) = parse("data\n\ndata\ndata\n\ndata:\n")
        // "The first block fires events with the data set to the empty string [...] The middle block fires an
        // event with the data set to a single newline character."
        #expect(c == [.init(type: "message", data: "", lastEventID: ""), .init(type: "message", data: "\n", lastEventID: "")])
        let (d, _) = parse("data:test\n\ndata: test\n\n")
        #expect(d == [.init(type: "message", data: "test", lastEventID: ""), .init(type: "message", data: "test", lastEventID: "")])
    }

    @Test func lineEndings() {
        #expect(parse("data: a\r\rdata: b\r\n\r\ndata: c\n\n").messages.map(\.data) == ["a", "b", "c"])
    }

    @Test func crlfSplitAcrossChunks() {
        var parser = SSEParser()
        var messages = parser.feed(Array("data: a\r".utf8))
        messages += parser.feed(Array("\n\r\n".utf8))
        #expect(messages.map(\.data) == ["a"])
    }

    @Test func idWithNulIsIgnored() {
        let (messages, parser) = parse("id: 5\ndata: a\n\nid: 6\u{0}\ndata: b\n\n")
        #expect(messages.map(\.lastEventID) == ["5", "5"])
        #expect(parser.lastEventID == "5")
    }

    @Test func byteOrderMarkOnlyAtStart() {
        let (messages, _) = parse("\u{FEFF}data: a\n\n\u{FEFF}data: b\n\n")
        #expect(messages.map(\.data) == ["a"])
    }

    @Test func retryNeedsDigits() {
        #expect(parse("retry: 12x\n\n").parser.retry == nil)
        #expect(parse("retry: 1200\n\n").parser.retry == 1200)
    }

    @Test func eventTypeAppliesToOneEvent() {
        let (messages, _) = parse("event: a\ndata: 1\n\ndata: 2\n\n")
        #expect(messages.map(\.type) == ["a", "message"])
    }

    @Test func incompleteFrameIsNotDispatched() {
        #expect(parse("data: never finished\n").messages.isEmpty)
    }
}
