/// Where a subscription or read starts: the events with an id greater than the resolved cursor are delivered.
public enum StartPosition: Sendable, Equatable {
    /// After this event id (`Last-Event-ID`, `after=`, `last_event_id=`).
    case after(Int64)
    /// From the first retained event (`from=earliest`).
    case earliest
    /// Only events committed from now on (`from=latest`, the default).
    case latest
    /// From the first event committed at or after this time (`since=`).
    case since(Timestamp)

    /// Picks the starting point by SPEC §2's precedence: `Last-Event-ID` header, then `after`/`last_event_id`, then
    /// `from`, then `since`, else `otherwise` (SSE: `latest`; the JSON read: `earliest`).
    ///
    /// Every value present is validated, also those the precedence passes over: a malformed `after` next to a valid
    /// header is a client's mistake worth hearing about, and a request is then refused for what it holds, not for
    /// which of its parts happened to be read.
    public static func resolve(
        lastEventIDHeader: String?,
        after: String?,
        lastEventIDParameter: String?,
        from: String?,
        since: String?,
        otherwise: StartPosition = .latest
    ) throws(ValidationError) -> StartPosition {
        let header = try lastEventID(header: lastEventIDHeader).map { v throws(ValidationError) in try parseCursor(v, field: "Last-Event-ID") }
        let after = try after.map { v throws(ValidationError) in try parseCursor(v, field: "after") }
        let parameter = try lastEventIDParameter.map { v throws(ValidationError) in try parseCursor(v, field: "last_event_id") }
        let from = try from.map { v throws(ValidationError) in try parseFrom(v, field: "from") }
        let since = try since.map { v throws(ValidationError) in try parseTime(v, field: "since") }
        if let cursor = header ?? after ?? parameter { return .after(cursor) }
        return from ?? since.map(StartPosition.since) ?? otherwise
    }

    /// `earliest` or `latest`.
    public static func parseFrom(_ text: String, field: String) throws(ValidationError) -> StartPosition {
        switch text {
        case "earliest": return .earliest
        case "latest": return .latest
        default: throw ValidationError(field: field, "\(field)=\(quoted(text)) is invalid: use 'earliest' or 'latest'")
        }
    }

    /// An RFC 3339 time, as `since` and `until` take.
    public static func parseTime(_ text: String, field: String) throws(ValidationError) -> Timestamp {
        guard let time = Timestamp(rfc3339: text) else {
            throw ValidationError(field: field, "\(field)=\(quoted(text)) is not an RFC 3339 time such as 2026-11-21T18:30:00Z")
        }
        return time
    }

    /// The `Last-Event-ID` header's value, or nil when absent or blank: `EventSource` never sends an empty one, so
    /// a blank header is not a reconnect.
    public static func lastEventID(header: String?) -> String? {
        guard let value = header?.trimmingSpaces(), !value.isEmpty else { return nil }
        return value
    }

    /// A cursor is a non-negative decimal event id.
    public static func parseCursor(_ text: String, field: String) throws(ValidationError) -> Int64 {
        guard !text.isEmpty, text.utf8.count <= 19, text.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let value = Int64(text) else {
            throw ValidationError(field: field, "\(field) \(quoted(text)) is not a valid cursor: expected a non-negative integer event id")
        }
        return value
    }
}
