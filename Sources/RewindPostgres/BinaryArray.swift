internal import NIOCore
internal import PostgresNIO

/// A one-dimensional array parameter written straight into PostgreSQL's binary form, element by element.
///
/// PostgresNIO encodes a Swift array (`[String]`, `[ByteBuffer]`) well, but only from an array of values made
/// first: for a group commit of 16 000 events that is an array of strings and one buffer per event's data, built
/// and then copied again into the statement. Writing each element once, from the request's own strings, is what
/// this type is for; in a profile of batch ingest, encoding the commit's arrays was a quarter of the server's CPU.
///
/// The form (all integers big-endian): the number of dimensions (1), a flag for NULL elements (0), the element
/// type's OID, the length and lower bound (1) of the dimension, then per element its byte count and bytes.
struct BinaryArrayParameter: PostgresDynamicTypeEncodable {
    let psqlType: PostgresDataType
    var psqlFormat: PostgresFormat { .binary }
    /// The whole parameter; its element count is kept up to date at each append.
    private var bytes: ByteBuffer
    private(set) var count: Int32 = 0

    /// - Parameters:
    ///   - arrayType: the array's type, e.g. `.textArray`.
    ///   - elementType: its elements' type, e.g. `.text`.
    init(_ arrayType: PostgresDataType, of elementType: PostgresDataType, reservingCapacity capacity: Int = 256) {
        psqlType = arrayType
        bytes = ByteBuffer()
        bytes.reserveCapacity(20 + capacity)
        bytes.writeMultipleIntegers(Int32(1), Int32(0), elementType.rawValue, Int32(0), Int32(1))
    }

    /// Appends an element made of these bytes (for `text`, its UTF-8).
    mutating func append(bytes element: some Collection<UInt8>) {
        bytes.writeInteger(Int32(element.count))
        bytes.writeBytes(element)
        counted()
    }

    /// Appends a string's UTF-8 as one element (`text`, or `bytea` holding text).
    mutating func append(utf8 string: String) {
        var string = string
        string.withUTF8 { append(bytes: $0) }
    }

    mutating func append(_ value: Int64) {
        bytes.writeMultipleIntegers(Int32(8), value)
        counted()
    }

    mutating func append(_ value: Int32) {
        bytes.writeMultipleIntegers(Int32(4), value)
        counted()
    }

    mutating func append(_ value: Bool) {
        bytes.writeMultipleIntegers(Int32(1), UInt8(value ? 1 : 0))
        counted()
    }

    private mutating func counted() {
        count += 1
        bytes.setInteger(count, at: bytes.readerIndex + 12)
    }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        byteBuffer.writeImmutableBuffer(bytes)
    }
}

/// A reader of one one-dimensional array in PostgreSQL's binary form (see `BinaryArrayParameter`), handing out
/// each element's bytes in place.
struct BinaryArrayReader {
    let bytes: UnsafeBufferPointer<UInt8>
    private var offset = 0

    init(_ bytes: UnsafeBufferPointer<UInt8>) { self.bytes = bytes }

    var atEnd: Bool { offset == bytes.count }

    /// The big-endian unsigned integer in these bytes.
    static func integer(_ slice: UnsafeBufferPointer<UInt8>) -> UInt64 {
        slice.reduce(0) { $0 << 8 | UInt64($1) }
    }

    private mutating func take(_ size: Int) -> UnsafeBufferPointer<UInt8>? {
        guard size >= 0, bytes.count - offset >= size else { return nil }
        defer { offset += size }
        return UnsafeBufferPointer(rebasing: bytes[offset..<offset + size])
    }

    private mutating func int32() -> Int32? {
        take(4).map { Int32(truncatingIfNeeded: Self.integer($0)) }
    }

    /// Reads the header: true for one dimension of `count` elements.
    mutating func start(count: Int) -> Bool {
        guard let dimensions = int32(), dimensions == 1, int32() != nil, int32() != nil, let length = int32(), int32() != nil
        else { return false }
        return Int(length) == count
    }

    /// The next element's bytes; nil for a NULL or past the end.
    mutating func next() -> UnsafeBufferPointer<UInt8>? {
        guard let length = int32(), length >= 0 else { return nil }
        return take(Int(length))
    }
}
