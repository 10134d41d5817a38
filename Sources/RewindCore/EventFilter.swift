/// Which events a subscription or read covers: streams by name or trailing-`*` pattern, and event types.
public struct EventFilter: Sendable, Hashable {
    /// Exact stream names.
    public private(set) var names: [String]
    /// Name prefixes from patterns: `orders.*` covers every stream whose name starts with `orders.`.
    public private(set) var prefixes: [String]
    /// True for `*`: every stream.
    public private(set) var allStreams: Bool
    /// Event types to keep; empty keeps every type.
    public var types: [String]

    /// Every event of every stream.
    public static let everything = EventFilter(names: [], prefixes: [], allStreams: true, types: [])

    /// One stream, every type.
    public init(stream: StreamName, types: [String] = []) {
        self.init(names: [stream.rawValue], prefixes: [], allStreams: false, types: types)
    }

    private init(names: [String], prefixes: [String], allStreams: Bool, types: [String]) {
        self.names = names
        self.prefixes = prefixes
        self.allStreams = allStreams
        self.types = types
    }

    /// Every stream whose name starts with `prefix`.
    public static func prefix(_ prefix: String) -> EventFilter {
        EventFilter(names: [], prefixes: [prefix], allStreams: false, types: [])
    }

    /// Parses `stream=` values: names, `prefix*` / `prefix.*` patterns, or `*`.
    public init(patterns: [String], types: [String] = []) throws(ValidationError) {
        guard !patterns.isEmpty else {
            throw ValidationError(field: "stream", "name at least one stream: stream=orders, stream=orders.* or stream=*")
        }
        var names: [String] = []
        var prefixes: [String] = []
        var all = false
        for pattern in patterns {
            if pattern == "*" {
                all = true
            } else if pattern.hasSuffix("*") {
                let prefix = String(pattern.dropLast())
                // A prefix is a stream name, possibly ending in the level separator.
                let stem = prefix.hasSuffix(".") ? String(prefix.dropLast()) : prefix
                guard (try? StreamName(validating: stem)) != nil else {
                    throw ValidationError(
                        field: "stream",
                        "stream pattern \(quoted(pattern)) is invalid: use a stream name followed by * or .*, or * alone"
                    )
                }
                prefixes.append(prefix)
            } else {
                names.append(try StreamName(validating: pattern).rawValue)
            }
        }
        self.init(names: names, prefixes: prefixes, allStreams: all, types: types)
    }

    /// True if an event of this stream and type passes the filter.
    public func matches(stream: String, type: String) -> Bool {
        guard types.isEmpty || types.contains(type) else { return false }
        return allStreams || names.contains(stream) || prefixes.contains { stream.hasPrefix($0) }
    }

    /// True if the filter covers this stream at all.
    public func covers(stream: String) -> Bool {
        allStreams || names.contains(stream) || prefixes.contains { stream.hasPrefix($0) }
    }

    /// True if every stream `other` could cover is covered by this filter: a grant of `orders.*` includes a
    /// subscription to `orders.eu` and to `orders.eu.*`, but not one to `orders` or `*`.
    public func includes(_ other: EventFilter) -> Bool {
        if allStreams { return true }
        if other.allStreams { return false }
        return other.names.allSatisfy { covers(stream: $0) } && other.prefixes.allSatisfy { prefix in prefixes.contains { prefix.hasPrefix($0) } }
    }
}
