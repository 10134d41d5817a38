/// Writes Server-Sent Events frames as the WHATWG HTML "server-sent events" parser reads them.
///
/// The data is cut on every line ending that parser recognises (CRLF, LF, and a lone CR) and each piece goes on a
/// `data:` line of its own, so no payload can end a frame early or start a field. CR and CRLF therefore arrive as LF
/// at the client: the parser joins `data` lines with LF. The JSON read returns data byte for byte.
public enum SSEEncoder {
    /// Appends one event frame: `id:`, `event:` (left out for `message`, the parser's default), `data:` lines, blank line.
    public static func appendFrame(id: Int64, type: String, data: String, to out: inout [UInt8]) {
        out.append(contentsOf: idPrefix)
        appendDecimal(id, to: &out)
        out.append(lf)
        if type != "message" {
            out.append(contentsOf: eventPrefix)
            out.append(contentsOf: type.utf8)
            out.append(lf)
        }
        appendData(data, to: &out)
        out.append(lf)
    }

    /// Appends one event frame from raw UTF-8 type and data (as a database hands them out).
    public static func appendFrame(id: Int64, type: UnsafeBufferPointer<UInt8>, data: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(contentsOf: idPrefix)
        appendDecimal(id, to: &out)
        out.append(lf)
        if !type.elementsEqual(messageType) {
            out.append(contentsOf: eventPrefix)
            out.append(contentsOf: type)
            out.append(lf)
        }
        appendData(bytes: data, to: &out)
        out.append(lf)
    }

    /// Appends a comment line (`: text`), which every client ignores; used to flush headers and as heartbeat.
    /// Line endings in `text` are replaced by spaces so a comment stays one line.
    public static func appendComment(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: ":"))
        if !text.isEmpty {
            out.append(space)
            out.append(contentsOf: text.utf8.map { $0 == lf || $0 == cr ? space : $0 })
        }
        out.append(lf)
    }

    /// Appends the reconnection delay field.
    public static func appendRetry(milliseconds: Int, to out: inout [UInt8]) {
        out.append(contentsOf: Array("retry: ".utf8))
        appendDecimal(Int64(milliseconds), to: &out)
        out.append(lf)
    }

    private static func appendData(_ data: String, to out: inout [UInt8]) {
        var utf8 = data.utf8
        let written: Void? = utf8.withContiguousStorageIfAvailable { appendData(bytes: $0, to: &out) }
        if written == nil {
            utf8 = String(data).utf8
            Array(utf8).withUnsafeBufferPointer { appendData(bytes: $0, to: &out) }
        }
    }

    private static func appendData(bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        var lineStart = 0
        var i = 0
        let n = bytes.count
        while i < n {
            let byte = bytes[i]
            if byte == lf || byte == cr {
                out.append(contentsOf: dataPrefix)
                out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[lineStart..<i]))
                out.append(lf)
                i += (byte == cr && i + 1 < n && bytes[i + 1] == lf) ? 2 : 1
                lineStart = i
            } else {
                i += 1
            }
        }
        // The piece after the last line ending; empty when data ends with one, which keeps that ending.
        out.append(contentsOf: dataPrefix)
        out.append(contentsOf: UnsafeBufferPointer(rebasing: bytes[lineStart..<n]))
        out.append(lf)
    }

    static func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        var digits = 1
        var power: UInt64 = 10
        while digits < 19, magnitude >= power {
            digits += 1
            power &*= 10
        }
        // Written in place, last digit first: no buffer of its own for a number of each frame.
        let end = out.count + digits
        out.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
        out.withUnsafeMutableBufferPointer { buffer in
            var index = end - 1
            repeat {
                buffer[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10)
                magnitude /= 10
                index -= 1
            } while magnitude > 0
        }
    }

    private static let lf = UInt8(ascii: "\n")
    private static let cr = UInt8(ascii: "\r")
    private static let space = UInt8(ascii: " ")
    private static let idPrefix = Array("id: ".utf8)
    private static let eventPrefix = Array("event: ".utf8)
    private static let dataPrefix = Array("data: ".utf8)
    private static let messageType = Array("message".utf8)
}
