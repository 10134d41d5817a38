import ArgumentParser
import RewindCore
import RewindStore

/// The retention flags `rewind serve` and `rewind prune` share.
struct RetentionOptions: ParsableArguments {
    @Option(help: "Remove events older than this from every stream (e.g. 30d, 12h, 90m).")
    var retentionMaxAge: String?

    @Option(help: "Keep at most this many events of every stream.")
    var retentionMaxEvents: Int64?

    @Option(
        name: .customLong("stream-retention"),
        help: "Retention for streams matching a name or pattern, overriding the defaults (repeatable): 'orders.*:max-age=7d,max-events=1000'."
    )
    var streamRetention: [String] = []

    func policy() throws -> RetentionPolicy {
        try makeRetentionPolicy(maxAge: retentionMaxAge, maxEvents: retentionMaxEvents, streamRules: streamRetention)
    }
}

/// The retention flags as a policy; throws a usage error naming the flag at fault.
func makeRetentionPolicy(maxAge: String?, maxEvents: Int64?, streamRules: [String]) throws -> RetentionPolicy {
    func age(_ text: String, flag: String) throws -> Duration {
        guard let duration = DurationText.parse(text), duration > .zero else {
            throw ValidationError("\(flag) '\(text)' is not a duration such as 30d, 12h or 90m")
        }
        return duration
    }
    if let maxEvents, maxEvents < 1 { throw ValidationError("--retention-max-events must be at least 1") }
    let defaults = RetentionPolicy.Limits(
        maxAge: try maxAge.map { try age($0, flag: "--retention-max-age") },
        maxEvents: maxEvents
    )
    var rules: [(pattern: EventFilter, limits: RetentionPolicy.Limits)] = []
    for rule in streamRules {
        let usage = "--stream-retention '\(rule)' should look like 'orders.*:max-age=7d,max-events=1000'"
        guard let colon = rule.firstIndex(of: ":") else { throw ValidationError(usage) }
        let pattern: EventFilter
        do {
            pattern = try EventFilter(patterns: [String(rule[..<colon])])
        } catch {
            throw ValidationError("\(usage): \(error)")
        }
        var limits = RetentionPolicy.Limits()
        for setting in rule[rule.index(after: colon)...].split(separator: ",") {
            let parts = setting.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw ValidationError(usage) }
            switch parts[0] {
            case "max-age": limits.maxAge = try age(parts[1], flag: "--stream-retention max-age")
            case "max-events":
                guard let count = Int64(parts[1]), count >= 1 else { throw ValidationError("\(usage): max-events must be at least 1") }
                limits.maxEvents = count
            default: throw ValidationError(usage)
            }
        }
        rules.append((pattern, limits))
    }
    return RetentionPolicy(defaults: defaults, rules: rules)
}
