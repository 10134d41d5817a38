/// A client input that Rewind refuses, naming the field or header at fault.
///
/// The server maps it to `400 Bad Request` (or the status it carries), so `detail` is written for the person
/// who sent the request: it names what is wrong and, where it helps, what would be accepted.
public struct ValidationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kind of refusal; decides the HTTP status.
    public enum Kind: Sendable, Equatable {
        /// Malformed input: 400.
        case malformed
        /// Over a configured size limit: 413.
        case tooLarge
        /// A media type or encoding Rewind does not take: 415.
        case unsupportedMediaType
    }

    public var kind: Kind
    /// The field, parameter or header at fault, e.g. `stream`, `data`, `Last-Event-ID`.
    public var field: String
    public var detail: String

    public init(_ kind: Kind = .malformed, field: String, _ detail: String) {
        self.kind = kind
        self.field = field
        self.detail = detail
    }

    public var description: String { detail }
}
