/// Builds compact JSON text into a byte buffer.
///
/// Responses embed stored JSON data verbatim (see `JSONScanner`), which `JSONEncoder` cannot do; this writer
/// covers the few shapes Rewind answers with.
public struct JSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []
    private var needsComma: [Bool] = [false]

    public init(capacity: Int = 256) {
        bytes.reserveCapacity(capacity)
    }

    public mutating func beginObject() { value(); bytes.append(UInt8(ascii: "{")); needsComma.append(false) }
    public mutating func endObject() { needsComma.removeLast(); bytes.append(UInt8(ascii: "}")) }
    public mutating func beginArray() { value(); bytes.append(UInt8(ascii: "[")); needsComma.append(false) }
    public mutating func endArray() { needsComma.removeLast(); bytes.append(UInt8(ascii: "]")) }

    /// A member name inside an object; the next call writes its value.
    public mutating func key(_ name: String) {
        value()
        Self.appendString(name, to: &bytes)
        bytes.append(UInt8(ascii: ":"))
        needsComma[needsComma.count - 1] = false
    }

    public mutating func string(_ text: String) { value(); Self.appendString(text, to: &bytes) }
    public mutating func int(_ number: Int64) { value(); SSEEncoder.appendDecimal(number, to: &bytes) }
    public mutating func bool(_ flag: Bool) { value(); bytes.append(contentsOf: Array((flag ? "true" : "false").utf8)) }
    public mutating func null() { value(); bytes.append(contentsOf: Array("null".utf8)) }
    /// Valid JSON text, written as is.
    public mutating func raw(_ json: String) { value(); bytes.append(contentsOf: json.utf8) }

    public mutating func int(_ number: Int) { int(Int64(number)) }

    /// Writes a comma before every value but the first of its container.
    private mutating func value() {
        if needsComma[needsComma.count - 1] { bytes.append(UInt8(ascii: ",")) }
        needsComma[needsComma.count - 1] = true
    }

    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20, 0x7F:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: [
                    UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)],
                ])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}

extension Event {
    /// The event as the JSON read API gives it: JSON-published data comes back as JSON, other data as a string.
    public func writeJSON(to json: inout JSONWriter) {
        json.beginObject()
        json.key("id")
        json.int(id)
        json.key("stream")
        json.string(stream)
        json.key("type")
        json.string(type)
        json.key("data")
        if isJSON { json.raw(data) } else { json.string(data) }
        json.key("time")
        json.string(time.description)
        if let key {
            json.key("key")
            json.string(key)
        }
        json.endObject()
    }
}
