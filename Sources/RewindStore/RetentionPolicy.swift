public import RewindCore

/// How long events are kept: a default for every stream and rules for streams by name or trailing-`*` pattern.
public struct RetentionPolicy: Sendable, Equatable {
    public struct Limits: Sendable, Equatable {
        /// Events older than this are removed.
        public var maxAge: Duration?
        /// Only the newest this many events of a stream are kept.
        public var maxEvents: Int64?

        public init(maxAge: Duration? = nil, maxEvents: Int64? = nil) {
            self.maxAge = maxAge
            self.maxEvents = maxEvents
        }

        public var isUnlimited: Bool { maxAge == nil && maxEvents == nil }
    }

    public var defaults: Limits
    /// `(pattern, limits)`: the first rule whose pattern covers a stream applies to it instead of the defaults.
    public var rules: [(pattern: EventFilter, limits: Limits)]

    public init(defaults: Limits = Limits(), rules: [(pattern: EventFilter, limits: Limits)] = []) {
        self.defaults = defaults
        self.rules = rules
    }

    public func limits(for stream: String) -> Limits {
        rules.first { $0.pattern.covers(stream: stream) }?.limits ?? defaults
    }

    public var isUnlimited: Bool { defaults.isUnlimited && rules.allSatisfy { $0.limits.isUnlimited } }

    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.defaults == rhs.defaults && lhs.rules.map(\.pattern) == rhs.rules.map(\.pattern)
            && lhs.rules.map(\.limits) == rhs.rules.map(\.limits)
    }
}

extension RetentionPolicy: CustomStringConvertible {
    /// The policy in the flags' own terms: `max-age=30d,max-events=1000; orders.*: max-events=10`.
    public var description: String {
        func text(_ limits: Limits) -> String {
            var parts: [String] = []
            if let age = limits.maxAge { parts.append("max-age=\(Self.durationText(age))") }
            if let count = limits.maxEvents { parts.append("max-events=\(count)") }
            return parts.isEmpty ? "unlimited" : parts.joined(separator: ",")
        }
        var out = [text(defaults)]
        for rule in rules {
            let pattern = rule.pattern.allStreams ? "*" : (rule.pattern.names + rule.pattern.prefixes.map { $0 + "*" }).joined(separator: ",")
            out.append("\(pattern): \(text(rule.limits))")
        }
        return out.joined(separator: "; ")
    }

    /// A duration in the largest unit that divides it exactly, as the retention flags take it.
    static func durationText(_ duration: Duration) -> String {
        let seconds = duration.components.seconds
        for (unit, size) in [("d", Int64(86_400)), ("h", 3_600), ("m", 60)] where seconds > 0 && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }
}
