import Crypto
public import RewindCore

/// The audit chain's hash function: SHA-256 over the previous event's hash and an unambiguous encoding of the
/// event's id, stream, type, commit time and data.
///
/// The encoding, byte for byte (all integers big-endian):
///
/// | bytes | field |
/// |---|---|
/// | 32 | the previous event's hash (32 zero bytes before the first event ever) |
/// | 8 | id, signed 64-bit |
/// | 8 + n | stream: its UTF-8 length n as unsigned 64-bit, then its bytes |
/// | 8 + n | type: the same |
/// | 8 | commit time in microseconds since the Unix epoch, signed 64-bit |
/// | 8 + n | data: the same as stream |
///
/// Every variable-length field carries its length, so no choice of names or data can move a field boundary and
/// make two different events encode alike.
public enum ChainHash {
    /// Bytes of a hash.
    public static let size = 32
    /// What the first event ever chains from.
    public static let genesis = [UInt8](repeating: 0, count: size)

    /// The hash of one event chained to `previous`.
    public static func hash(previous: [UInt8], id: Int64, stream: String, type: String, time: Int64, data: String) -> [UInt8] {
        var stream = stream
        var type = type
        var data = data
        return stream.withUTF8 { stream in
            type.withUTF8 { type in
                data.withUTF8 { data in
                    hash(
                        previous: previous,
                        id: id,
                        stream: UnsafeRawBufferPointer(stream),
                        type: UnsafeRawBufferPointer(type),
                        time: time,
                        data: UnsafeRawBufferPointer(data)
                    )
                }
            }
        }
    }

    /// The hash of `event` chained to `previous`.
    public static func hash(previous: [UInt8], event: Event) -> [UInt8] {
        hash(previous: previous, id: event.id, stream: event.stream, type: event.type, time: event.time.microseconds, data: event.data)
    }

    /// The same over raw UTF-8, as SQLite hands out column bytes.
    public static func hash(
        previous: [UInt8],
        id: Int64,
        stream: UnsafeRawBufferPointer,
        type: UnsafeRawBufferPointer,
        time: Int64,
        data: UnsafeRawBufferPointer
    ) -> [UInt8] {
        // Everything before the data goes to the hasher in one call: each call has a fixed cost, and the header
        // is small enough for the stack.
        var hasher = SHA256()
        let headerSize = size + 8 + (8 + stream.count) + (8 + type.count) + 8 + 8
        withUnsafeTemporaryAllocation(byteCount: headerSize, alignment: 8) { header in
            var offset = 0
            func append(_ bytes: UnsafeRawBufferPointer) {
                if bytes.count > 0 { header.baseAddress!.advanced(by: offset).copyMemory(from: bytes.baseAddress!, byteCount: bytes.count) }
                offset += bytes.count
            }
            func integer(_ value: UInt64) {
                withUnsafeBytes(of: value.bigEndian) { append($0) }
            }
            previous.withUnsafeBytes { append($0) }
            integer(UInt64(bitPattern: id))
            integer(UInt64(stream.count))
            append(stream)
            integer(UInt64(type.count))
            append(type)
            integer(UInt64(bitPattern: time))
            integer(UInt64(data.count))
            hasher.update(bufferPointer: UnsafeRawBufferPointer(header))
        }
        if data.count > 0 { hasher.update(bufferPointer: data) }
        return hasher.finalize().withUnsafeBytes { Array($0) }
    }

    /// Lowercase hexadecimal, as `verify` and `export` print hashes.
    public static func hex(_ hash: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(hash.count * 2)
        for byte in hash {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Parses what `hex` writes; nil unless exactly 64 hexadecimal digits.
    public static func bytes(hex: String) -> [UInt8]? {
        let text = Array(hex.utf8)
        guard text.count == size * 2 else { return nil }
        func nibble(_ c: UInt8) -> UInt8? {
            switch c {
            case 0x30...0x39: return c - 0x30
            case 0x61...0x66: return c - 0x61 + 10
            case 0x41...0x46: return c - 0x41 + 10
            default: return nil
            }
        }
        var out: [UInt8] = []
        out.reserveCapacity(size)
        var i = 0
        while i < text.count {
            guard let high = nibble(text[i]), let low = nibble(text[i + 1]) else { return nil }
            out.append(high << 4 | low)
            i += 2
        }
        return out
    }
}
