/// An incremental Server-Sent Events parser following the WHATWG HTML "event stream interpretation" algorithm.
///
/// Feed it bytes as they arrive, in chunks of any size (a CRLF split across chunks counts once); it returns the
/// events dispatched so far. Used by `rewind tail` and by the tests to read Rewind's streams as a browser would.
public struct SSEParser: Sendable {
    /// A dispatched event, as a browser's `MessageEvent` would carry it.
    public struct Message: Sendable, Equatable {
        public var type: String
        public var data: String
        /// The event source's last event ID string at dispatch.
        public var lastEventID: String

        public init(type: String, data: String, lastEventID: String) {
            self.type = type
            self.data = data
            self.lastEventID = lastEventID
        }
    }

    /// The last event ID string, what `EventSource` sends as `Last-Event-ID` when it reconnects.
    public private(set) var lastEventID = ""
    /// The reconnection time in milliseconds, if the stream set one.
    public private(set) var retry: Int?
    /// Comment lines seen, without the leading colon.
    public private(set) var comments: [String] = []

    private var line: [UInt8] = []
    private var data: [UInt8] = []
    private var type: [UInt8] = []
    private var idBuffer: [UInt8] = []
    private var sawCR = false
    /// A UTF-8 byte order mark is dropped from the start of the stream only.
    private var bomChecked = false

    public init() {}

    /// Consumes bytes and returns the events they complete.
    public mutating func feed(_ bytes: some Sequence<UInt8>) -> [Message] {
        var messages: [Message] = []
        for byte in bytes {
            if sawCR {
                sawCR = false
                if byte == 0x0A { continue }
            }
            switch byte {
            case 0x0D:
                sawCR = true
                processLine(&messages)
            case 0x0A:
                processLine(&messages)
            default:
                line.append(byte)
            }
        }
        return messages
    }

    private mutating func processLine(_ messages: inout [Message]) {
        defer { line.removeAll(keepingCapacity: true) }
        if !bomChecked {
            bomChecked = true
            if line.starts(with: [0xEF, 0xBB, 0xBF]) { line.removeFirst(3) }
        }
        if line.isEmpty {
            dispatch(&messages)
            return
        }
        if line[0] == UInt8(ascii: ":") {
            comments.append(String(decoding: line.dropFirst(), as: UTF8.self))
            return
        }
        let field: ArraySlice<UInt8>
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            field = line[..<colon]
            value = line[(colon + 1)...]
            if value.first == 0x20 { value = value.dropFirst() }
        } else {
            field = line[...]
            value = []
        }
        switch String(decoding: field, as: UTF8.self) {
        case "event":
            type = Array(value)
        case "data":
            data.append(contentsOf: value)
            data.append(0x0A)
        case "id":
            if !value.contains(0) { idBuffer = Array(value) }
        case "retry":
            if !value.isEmpty, value.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let ms = Int(String(decoding: value, as: UTF8.self)) {
                retry = ms
            }
        default:
            break
        }
    }

    private mutating func dispatch(_ messages: inout [Message]) {
        lastEventID = String(decoding: idBuffer, as: UTF8.self)
        defer {
            data.removeAll(keepingCapacity: true)
            type.removeAll(keepingCapacity: true)
        }
        guard !data.isEmpty else { return }
        data.removeLast()
        messages.append(
            Message(
                type: type.isEmpty ? "message" : String(decoding: type, as: UTF8.self),
                data: String(decoding: data, as: UTF8.self),
                lastEventID: lastEventID
            )
        )
    }
}
