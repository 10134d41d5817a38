/// A strict RFC 8259 reader over UTF-8 bytes that keeps JSON values as their compact text.
///
/// Publishers' JSON data is stored as they wrote it, minus insignificant whitespace: member order, number spelling
/// and string escapes stay untouched, which a decode-and-re-encode round trip through `JSONSerialization` would not
/// keep. That matters for an audit log, whose point is to show what was pushed.
struct JSONScanner {
    struct Failure: Error {
        var offset: Int
        var message: String
    }

    private let bytes: UnsafeBufferPointer<UInt8>
    private(set) var position: Int
    private let end: Int
    /// Deepest nesting accepted; bounds recursion so hostile input cannot exhaust the stack.
    static let maxDepth = 256

    init(_ bytes: UnsafeBufferPointer<UInt8>, from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.position = start
        self.end = end ?? bytes.count
    }

    var isAtEnd: Bool { position >= end }

    mutating func skipWhitespace() {
        while position < end {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    /// Fails unless only whitespace remains.
    mutating func expectEnd() throws(Failure) {
        skipWhitespace()
        if position < end { throw fail("unexpected \(describe(bytes[position])) after the JSON value") }
    }

    func peek() -> UInt8? { position < end ? bytes[position] : nil }

    mutating func expect(_ byte: UInt8) throws(Failure) {
        skipWhitespace()
        guard position < end else { throw fail("unexpected end of input, expected '\(Character(Unicode.Scalar(byte)))'") }
        guard bytes[position] == byte else {
            throw fail("expected '\(Character(Unicode.Scalar(byte)))', found \(describe(bytes[position]))")
        }
        position += 1
    }

    /// Reads an object, handing each member's name to `member` with the scanner at the member's value, which
    /// `member` must read: the object's punctuation is checked here once for every kind of body.
    mutating func forEachMember(_ member: (_ name: String, _ scanner: inout JSONScanner) throws -> Void) throws {
        try expect(UInt8(ascii: "{"))
        skipWhitespace()
        guard peek() != UInt8(ascii: "}") else {
            position += 1
            return
        }
        while true {
            skipWhitespace()
            guard peek() == UInt8(ascii: "\"") else { throw fail("expected a member name in double quotes") }
            let name = try readString()
            try expect(UInt8(ascii: ":"))
            try member(name, &self)
            skipWhitespace()
            guard peek() == UInt8(ascii: ",") else { break }
            position += 1
        }
        try expect(UInt8(ascii: "}"))
    }

    /// Reads an object or an array, appending its compact text: the two differ only in that an object's elements
    /// are a member name, a colon and a value, and in their closing byte.
    private mutating func readCompactContainer(into out: inout [UInt8], depth: Int) throws(Failure) {
        let open = bytes[position]
        let isObject = open == UInt8(ascii: "{")
        let close = isObject ? UInt8(ascii: "}") : UInt8(ascii: "]")
        position += 1
        out.append(open)
        skipWhitespace()
        if peek() == close {
            position += 1
            out.append(close)
            return
        }
        while true {
            if isObject {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw fail("expected a member name in double quotes") }
                try readRawString(into: &out)
                try expect(UInt8(ascii: ":"))
                out.append(UInt8(ascii: ":"))
            }
            try readCompactValue(into: &out, depth: depth + 1)
            skipWhitespace()
            if peek() == UInt8(ascii: ",") {
                position += 1
                out.append(UInt8(ascii: ","))
            } else {
                try expect(close)
                out.append(close)
                return
            }
        }
    }

    /// Reads one value of any kind and appends its compact text.
    mutating func readCompactValue(into out: inout [UInt8], depth: Int = 0) throws(Failure) {
        skipWhitespace()
        guard position < end else { throw fail("unexpected end of input, expected a value") }
        guard depth < Self.maxDepth else { throw fail("nesting deeper than \(Self.maxDepth) levels") }
        switch bytes[position] {
        case UInt8(ascii: "{"), UInt8(ascii: "["):
            try readCompactContainer(into: &out, depth: depth)
        case UInt8(ascii: "\""):
            try readRawString(into: &out)
        case UInt8(ascii: "t"):
            try readLiteral("true", into: &out)
        case UInt8(ascii: "f"):
            try readLiteral("false", into: &out)
        case UInt8(ascii: "n"):
            try readLiteral("null", into: &out)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            try readNumber(into: &out)
        default:
            throw fail("unexpected \(describe(bytes[position])), expected a value")
        }
    }

    /// Reads a string token, validating it, and appends it verbatim (quotes and escapes included).
    mutating func readRawString(into out: inout [UInt8]) throws(Failure) {
        let start = position
        try scanString(decodingInto: nil)
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<position]))
    }

    /// Reads a string token and returns its decoded text.
    mutating func readString() throws(Failure) -> String {
        skipWhitespace()
        guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string") }
        var decoded: [UInt8] = []
        try scanString(decodingInto: &decoded)
        return String(decoding: decoded, as: UTF8.self)
    }

    /// True if the next value is a string, without consuming it.
    mutating func nextIsString() -> Bool {
        skipWhitespace()
        return peek() == UInt8(ascii: "\"")
    }

    private mutating func scanString(decodingInto decoded: UnsafeMutablePointer<[UInt8]>?) throws(Failure) {
        position += 1  // opening quote
        var runStart = position
        while true {
            guard position < end else { throw fail("unterminated string") }
            let byte = bytes[position]
            if byte == UInt8(ascii: "\"") {
                decoded?.pointee.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
                position += 1
                return
            }
            if byte < 0x20 {
                throw fail("control character \(describe(byte)) in a string must be escaped")
            }
            if byte != UInt8(ascii: "\\") {
                position += 1
                continue
            }
            decoded?.pointee.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[runStart..<position]))
            position += 1
            guard position < end else { throw fail("unterminated escape") }
            let escape = bytes[position]
            position += 1
            var scalarValue: UInt32
            switch escape {
            case UInt8(ascii: "\""): scalarValue = 0x22
            case UInt8(ascii: "\\"): scalarValue = 0x5C
            case UInt8(ascii: "/"): scalarValue = 0x2F
            case UInt8(ascii: "b"): scalarValue = 0x08
            case UInt8(ascii: "f"): scalarValue = 0x0C
            case UInt8(ascii: "n"): scalarValue = 0x0A
            case UInt8(ascii: "r"): scalarValue = 0x0D
            case UInt8(ascii: "t"): scalarValue = 0x09
            case UInt8(ascii: "u"):
                scalarValue = try readHex4()
                if (0xD800...0xDBFF).contains(scalarValue) {
                    // A high surrogate must pair with a following \uDC00-\uDFFF to name one character.
                    if position + 1 < end, bytes[position] == UInt8(ascii: "\\"), bytes[position + 1] == UInt8(ascii: "u") {
                        let save = position
                        position += 2
                        let low = try readHex4()
                        if (0xDC00...0xDFFF).contains(low) {
                            scalarValue = 0x10000 + ((scalarValue - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            position = save
                            if decoded != nil { throw fail("unpaired UTF-16 surrogate \\u\(hex(scalarValue)) in a string") }
                        }
                    } else if decoded != nil {
                        throw fail("unpaired UTF-16 surrogate \\u\(hex(scalarValue)) in a string")
                    }
                } else if (0xDC00...0xDFFF).contains(scalarValue), decoded != nil {
                    throw fail("unpaired UTF-16 surrogate \\u\(hex(scalarValue)) in a string")
                }
            default:
                throw fail("invalid escape '\\\(Character(Unicode.Scalar(escape)))' in a string")
            }
            if let decoded, let scalar = Unicode.Scalar(scalarValue) {
                decoded.pointee.append(contentsOf: String(Character(scalar)).utf8)
            }
            runStart = position
        }
    }

    private mutating func readHex4() throws(Failure) -> UInt32 {
        guard position + 4 <= end else { throw fail("incomplete \\u escape") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = bytes[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw fail("invalid hex digit \(describe(byte)) in \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    private mutating func readLiteral(_ word: StaticString, into out: inout [UInt8]) throws(Failure) {
        let count = word.utf8CodeUnitCount
        guard position + count <= end,
            memcmp(bytes.baseAddress! + position, word.utf8Start, count) == 0
        else { throw fail("invalid literal, expected '\(word)'") }
        out.append(contentsOf: UnsafeBufferPointer(start: word.utf8Start, count: count))
        position += count
    }

    private mutating func readNumber(into out: inout [UInt8]) throws(Failure) {
        let start = position
        if bytes[position] == UInt8(ascii: "-") { position += 1 }
        guard position < end, isDigit(bytes[position]) else { throw fail("invalid number") }
        if bytes[position] == UInt8(ascii: "0") {
            position += 1
            if position < end, isDigit(bytes[position]) { throw fail("leading zero in a number") }
        } else {
            while position < end, isDigit(bytes[position]) { position += 1 }
        }
        if position < end, bytes[position] == UInt8(ascii: ".") {
            position += 1
            guard position < end, isDigit(bytes[position]) else { throw fail("expected a digit after '.' in a number") }
            while position < end, isDigit(bytes[position]) { position += 1 }
        }
        if position < end, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
            position += 1
            if position < end, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
            guard position < end, isDigit(bytes[position]) else { throw fail("expected a digit in a number's exponent") }
            while position < end, isDigit(bytes[position]) { position += 1 }
        }
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[start..<position]))
    }

    private func isDigit(_ byte: UInt8) -> Bool { byte >= 0x30 && byte <= 0x39 }

    func fail(_ message: String) -> Failure { Failure(offset: position, message: message) }

    private func describe(_ byte: UInt8) -> String {
        byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(hex(UInt32(byte), width: 2))"
    }

    private func hex(_ value: UInt32, width: Int = 4) -> String {
        let text = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - text.count)) + text
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif
