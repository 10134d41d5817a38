/// A validated stream name: `^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$`.
///
/// Dots separate levels (`orders.eu`), which is what trailing-`*` patterns match on.
public struct StreamName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(validating value: String) throws(ValidationError) {
        guard Self.isValid(value, maxLength: 200) else {
            throw ValidationError(
                field: "stream",
                "stream name \(quoted(value)) is invalid: use 1-200 characters from A-Z a-z 0-9 . _ : -, starting with a letter or digit"
            )
        }
        self.rawValue = value
    }

    public var description: String { rawValue }

    /// True for a string that is a well-formed event type (reserved `rewind.` types included, for filters).
    public static func isValidEventType(_ value: String) -> Bool {
        isValid(value, maxLength: 100)
    }

    /// The shared name rule of streams and event types; only the length differs.
    static func isValid(_ value: String, maxLength: Int) -> Bool {
        let bytes = value.utf8
        guard let first = bytes.first, bytes.count <= maxLength, isAlphanumeric(first) else { return false }
        return bytes.allSatisfy {
            isAlphanumeric($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: "-")
        }
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A)
    }
}

/// An event type: same alphabet as stream names, at most 100 characters; `rewind.` is reserved for the server.
public struct EventType: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    /// The type of events published without one.
    public static let message = EventType(unchecked: "message")
    /// Sent when a cursor points before the retention horizon.
    public static let gap = EventType(unchecked: "rewind.gap")
    /// Sent when a cursor points beyond the log's head.
    public static let reset = EventType(unchecked: "rewind.reset")

    /// Validates a type given by a publisher; reserved `rewind.` types are refused.
    public init(validating value: String, field: String = "type") throws(ValidationError) {
        guard StreamName.isValid(value, maxLength: 100) else {
            throw ValidationError(
                field: field,
                "\(field) \(quoted(value)) is not a valid event type: use 1-100 characters from A-Z a-z 0-9 . _ : -, starting with a letter or digit"
            )
        }
        guard !value.hasPrefix("rewind.") else {
            throw ValidationError(field: field, "\(field) \(quoted(value)) is reserved: event types starting with 'rewind.' belong to the server")
        }
        self.rawValue = value
    }

    /// Wraps a type read back from the log, already validated when it was written.
    public init(unchecked value: String) {
        self.rawValue = value
    }

    public var description: String { rawValue }
}

/// Quotes a client value for an error message, cut short so a huge value cannot flood a response or a log.
func quoted(_ value: String) -> String {
    let limit = 64
    if value.count <= limit { return "'\(value)'" }
    return "'\(value.prefix(limit))…'"
}
