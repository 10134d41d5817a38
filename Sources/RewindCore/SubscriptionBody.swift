/// The JSON body of `POST /v1/events`: a subscription or read described by members instead of query parameters,
/// for clients (fetch-event-source) that send headers and lists of streams too long for a URL.
///
/// ```json
/// {"streams": ["orders", "audit.*"], "types": ["order.created"], "after": 17, "limit": 100, "live": false}
/// ```
///
/// Members: `streams` (required, a non-empty array of names and trailing-`*` patterns), `types` (array of event
/// types), one starting point of `after` (event id), `from` (`earliest` | `latest`) and `since` (RFC 3339 time),
/// `until` (RFC 3339 time, the JSON read's upper bound), `limit` (positive integer), `live` (boolean) and `wait`
/// (seconds, the JSON read's long-poll). A query string can stack a reconnect's cursor onto a URL that already
/// has one, so GET ranks them; a body is written in one piece, so two starting points in it are a contradiction
/// and are refused. Every refusal names the member at fault, down to the array element (`streams[2]`).
public struct SubscriptionBody: Sendable, Equatable {
    public var streams: [String]
    public var types: [String]
    /// `after`, `from` or `since`; nil when the body names none.
    public var start: StartPosition?
    public var until: Timestamp?
    public var limit: Int?
    public var live: Bool?
    /// Seconds; the server checks it against its long-poll maximum.
    public var wait: Double?

    public init(
        streams: [String],
        types: [String] = [],
        start: StartPosition? = nil,
        until: Timestamp? = nil,
        limit: Int? = nil,
        live: Bool? = nil,
        wait: Double? = nil
    ) {
        self.streams = streams
        self.types = types
        self.start = start
        self.until = until
        self.limit = limit
        self.live = live
        self.wait = wait
    }

    static let members = ["streams", "types", "after", "from", "since", "until", "limit", "live", "wait"]

    /// Refuses (415, naming the header) a body that is not JSON in UTF-8; the server asks before reading the body.
    public static func checkContentType(_ contentType: String?) throws(ValidationError) {
        let mediaType = try MediaType.required(contentType, naming: "a subscription body is application/json")
        guard mediaType.type == "application/json" else {
            throw MediaType.unsupported(
                "Content-Type header \(quoted(mediaType.type)) is not supported: a subscription body is application/json"
            )
        }
        if let charset = mediaType.parameters["charset"], charset != "utf-8", charset != "utf8" {
            throw MediaType.unsupported("Content-Type header charset \(quoted(charset)) is not supported: a subscription body is UTF-8")
        }
    }

    /// Parses and validates a body sent with `contentType`; 415 for anything but JSON in UTF-8, 400 naming the
    /// member for everything else.
    public static func parse(_ body: [UInt8], contentType: String?) throws(ValidationError) -> SubscriptionBody {
        try checkContentType(contentType)
        guard String(validating: body, as: UTF8.self) != nil else {
            throw ValidationError(field: "body", "request body is not valid UTF-8")
        }
        do {
            return try body.withUnsafeBufferPointer { buffer throws -> SubscriptionBody in
                var scanner = JSONScanner(buffer)
                scanner.skipWhitespace()
                guard !scanner.isAtEnd else {
                    throw ValidationError(field: "body", #"request body is empty: send a JSON object such as {"streams": ["orders"]}"#)
                }
                guard scanner.peek() == UInt8(ascii: "{") else {
                    throw ValidationError(field: "body", #"request body must be a JSON object such as {"streams": ["orders"]}"#)
                }
                let parsed = try parseObject(&scanner)
                try scanner.expectEnd()
                return parsed
            }
        } catch let error as ValidationError {
            throw error
        } catch let error as JSONScanner.Failure {
            throw ValidationError(field: "body", "request body is not valid JSON: \(error.message) at byte \(error.offset)")
        } catch {
            throw ValidationError(field: "body", "request body could not be read: \(error)")
        }
    }

    private static func parseObject(_ scanner: inout JSONScanner) throws -> SubscriptionBody {
        var seen: Set<String> = []
        var streams: [String]?
        var body = SubscriptionBody(streams: [])
        var startMember: String?
        try scanner.forEachMember { name, scanner in
            guard members.contains(name) else {
                throw ValidationError(
                    field: name,
                    "unknown member \(quoted(name)): a subscription has \(members.map { "'\($0)'" }.joined(separator: ", "))"
                )
            }
            guard seen.insert(name).inserted else { throw ValidationError(field: name, "\(name) is given twice") }
            let value = try Value.read(&scanner)
            switch name {
            case "streams":
                let list = try value.strings(name)
                guard !list.isEmpty else {
                    throw ValidationError(field: name, #"streams must name at least one stream or pattern, e.g. ["orders", "audit.*"]"#)
                }
                for (index, pattern) in list.enumerated() {
                    do {
                        _ = try EventFilter(patterns: [pattern])
                    } catch {
                        throw ValidationError(
                            field: "streams[\(index)]",
                            "streams[\(index)] \(quoted(pattern)) is not a stream name or pattern: use a name, a name followed by * or .*, or * alone"
                        )
                    }
                }
                streams = list
            case "types":
                body.types = try value.strings(name)
                for (index, type) in body.types.enumerated() where !StreamName.isValidEventType(type) {
                    throw ValidationError(
                        field: "types[\(index)]",
                        "types[\(index)] \(quoted(type)) is not a valid event type: 1-100 characters from A-Z a-z 0-9 . _ : -"
                    )
                }
            case "after", "from", "since":
                if let startMember {
                    throw ValidationError(
                        field: name,
                        "\(name) and \(startMember) are both given: a subscription starts at one of after, from and since"
                    )
                }
                startMember = name
                switch name {
                case "after":
                    body.start = .after(try value.integer(name, minimum: 0))
                case "from":
                    body.start = try StartPosition.parseFrom(try value.string(name), field: name)
                default:
                    body.start = .since(try StartPosition.parseTime(try value.string(name), field: name))
                }
            case "until":
                body.until = try StartPosition.parseTime(try value.string(name), field: name)
            case "limit":
                body.limit = Int(try value.integer(name, minimum: 1))
            case "live":
                body.live = try value.boolean(name)
            default:  // wait
                body.wait = try value.number(name)
            }
        }
        guard let streams else {
            throw ValidationError(field: "streams", #"streams is required: the streams to follow, e.g. {"streams": ["orders", "audit.*"]}"#)
        }
        body.streams = streams
        return body
    }

    /// One member's value, read whole before its type is checked, so a wrong type is named as such rather than as
    /// a syntax error further on.
    private enum Value {
        case string(String)
        /// An array: its leading strings, and the first element that is not one (index and JSON text), if any.
        case array([String], notAString: (index: Int, text: String)?)
        /// A number, boolean, null or object, as its compact JSON text.
        case literal(String)

        static func read(_ scanner: inout JSONScanner) throws -> Value {
            scanner.skipWhitespace()
            switch scanner.peek() {
            case UInt8(ascii: "\""):
                return .string(try scanner.readString())
            case UInt8(ascii: "["):
                try scanner.expect(UInt8(ascii: "["))
                var list: [String] = []
                var notAString: (index: Int, text: String)?
                scanner.skipWhitespace()
                if scanner.peek() == UInt8(ascii: "]") {
                    try scanner.expect(UInt8(ascii: "]"))
                    return .array(list, notAString: nil)
                }
                // The whole array is read, so the rest of the body is still checked as JSON.
                var index = 0
                while true {
                    if notAString == nil, scanner.nextIsString() {
                        list.append(try scanner.readString())
                    } else {
                        var compact: [UInt8] = []
                        try scanner.readCompactValue(into: &compact)
                        if notAString == nil { notAString = (index, String(decoding: compact, as: UTF8.self)) }
                    }
                    index += 1
                    scanner.skipWhitespace()
                    if scanner.peek() == UInt8(ascii: ",") {
                        try scanner.expect(UInt8(ascii: ","))
                    } else {
                        try scanner.expect(UInt8(ascii: "]"))
                        return .array(list, notAString: notAString)
                    }
                }
            default:
                var compact: [UInt8] = []
                try scanner.readCompactValue(into: &compact)
                return .literal(String(decoding: compact, as: UTF8.self))
            }
        }

        private var kind: String {
            switch self {
            case .string: "a string"
            case .array: "an array"
            case .literal(let text):
                switch text.first {
                case "{": "an object"
                case "t", "f": "a boolean"
                case "n": "null"
                default: "a number"
                }
            }
        }

        func string(_ name: String) throws(ValidationError) -> String {
            guard case .string(let text) = self else { throw ValidationError(field: name, "\(name) must be a string, not \(kind)") }
            return text
        }

        func strings(_ name: String) throws(ValidationError) -> [String] {
            switch self {
            case .array(let list, nil):
                return list
            case .array(_, let bad?):
                throw ValidationError(field: "\(name)[\(bad.index)]", "\(name)[\(bad.index)] must be a string, not \(quoted(bad.text))")
            default:
                throw ValidationError(field: name, "\(name) must be an array of strings, not \(kind)")
            }
        }

        func boolean(_ name: String) throws(ValidationError) -> Bool {
            switch self {
            case .literal("true"): return true
            case .literal("false"): return false
            default: throw ValidationError(field: name, "\(name) must be true or false, not \(kind)")
            }
        }

        func integer(_ name: String, minimum: Int64) throws(ValidationError) -> Int64 {
            guard case .literal(let text) = self, let first = text.utf8.first, first == UInt8(ascii: "-") || (0x30...0x39).contains(first)
            else {
                throw ValidationError(field: name, "\(name) must be an integer, not \(kind)")
            }
            guard let value = Self.exactInteger(text), value >= minimum else {
                throw ValidationError(field: name, "\(name) \(quoted(text)) is invalid: expected an integer from \(minimum) to \(Int64.max)")
            }
            return value
        }

        /// A JSON number's value when it is a whole number in Int64's range, however it is spelled: JSON Schema
        /// counts `477.0` and `4.77e2` as the integer 477, and so does this, exactly (no detour through Double).
        static func exactInteger(_ text: String) -> Int64? {
            if let value = Int64(text) { return value }
            var mantissa = Substring(text)
            var exponent = 0
            if let e = mantissa.firstIndex(where: { $0 == "e" || $0 == "E" }) {
                guard let power = Int(mantissa[mantissa.index(after: e)...].drop(while: { $0 == "+" })), abs(power) <= 40 else { return nil }
                exponent = power
                mantissa = mantissa[..<e]
            }
            let negative = mantissa.hasPrefix("-")
            if negative { mantissa = mantissa.dropFirst() }
            var digits = String(mantissa.filter { $0 != "." })
            exponent -= mantissa.firstIndex(of: ".").map { mantissa.distance(from: $0, to: mantissa.endIndex) - 1 } ?? 0
            if exponent < 0 {
                // The digits shifted out must all be zeros.
                guard digits.count >= -exponent, digits.suffix(-exponent).allSatisfy({ $0 == "0" }) else { return nil }
                digits = String(digits.dropLast(-exponent))
            } else {
                digits += String(repeating: "0", count: exponent)
            }
            let trimmed = digits.drop(while: { $0 == "0" })
            guard trimmed.count <= 19, let magnitude = Int64(trimmed.isEmpty ? "0" : String(trimmed)) else { return nil }
            return negative ? -magnitude : magnitude
        }

        func number(_ name: String) throws(ValidationError) -> Double {
            guard case .literal(let text) = self, let first = text.utf8.first, first == UInt8(ascii: "-") || (0x30...0x39).contains(first)
            else {
                throw ValidationError(field: name, "\(name) must be a number of seconds, not \(kind)")
            }
            guard let value = Double(text), value.isFinite, value >= 0 else {
                throw ValidationError(field: name, "\(name) \(quoted(text)) is invalid: expected a number of seconds, 0 or more")
            }
            return value
        }
    }
}
