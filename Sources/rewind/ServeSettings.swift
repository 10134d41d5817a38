import Configuration
import Foundation
import Synchronization

/// The options of `rewind serve` from the flags, the environment and a YAML file, in that order of precedence.
///
/// Each option's long name is its key: `retry` in the file, `REWIND_RETRY` in the environment (upper case, dashes as
/// underscores), `--retry` on the command line. The file and the environment are read by swift-configuration's
/// `YAMLSnapshot` and `EnvironmentVariablesProvider`; lists are YAML sequences, or comma-separated in the
/// environment. A key the file does not know, or a value of the wrong type, is a usage error naming the key;
/// unknown `REWIND_*` variables are ignored, since other tools share the prefix.
struct ServeSettings {
    /// One option: its long name, the type its value reads as, and whether it must never be shown.
    struct Option {
        var name: String
        var type: ConfigType
        var secret = false
        var defaultText: String
    }

    /// Where a value came from, as `--print-config` shows it.
    enum Source: CustomStringConvertible {
        case flag, environment(String), file(String), defaultValue
        var description: String {
            switch self {
            case .flag: "flag"
            case .environment(let name): "environment (\(name))"
            case .file(let path): "file (\(path))"
            case .defaultValue: "default"
            }
        }
    }

    static let options: [Option] = [
        Option(name: "host", type: .string, defaultText: "127.0.0.1"),
        Option(name: "port", type: .int, defaultText: "8080"),
        Option(name: "db", type: .string, secret: false, defaultText: "rewind.sqlite"),
        Option(name: "heartbeat", type: .double, defaultText: "15"),
        Option(name: "retry", type: .int, defaultText: "3000"),
        Option(name: "durability", type: .string, defaultText: "normal"),
        Option(name: "max-event-bytes", type: .int, defaultText: "\(1 << 20)"),
        Option(name: "max-batch-events", type: .int, defaultText: "10000"),
        Option(name: "max-body-bytes", type: .int, defaultText: "\(32 << 20)"),
        Option(name: "retention-max-age", type: .string, defaultText: "none"),
        Option(name: "retention-max-events", type: .int, defaultText: "none"),
        Option(name: "stream-retention", type: .stringArray, defaultText: "none"),
        Option(name: "maintenance-interval", type: .string, defaultText: "60s"),
        Option(name: "window-events", type: .int, defaultText: "16384"),
        Option(name: "window-bytes", type: .int, defaultText: "\(32 << 20)"),
        Option(name: "cors-origin", type: .stringArray, defaultText: "none"),
        Option(name: "jwt-secret", type: .string, secret: true, defaultText: "none"),
        Option(name: "jwt-secret-file", type: .string, defaultText: "none"),
        Option(name: "jwt-public-key", type: .string, defaultText: "none"),
        Option(name: "max-subscribers", type: .int, defaultText: "10000"),
        Option(name: "max-subscribers-per-subject", type: .int, defaultText: "1000"),
        Option(name: "max-streams-per-subscription", type: .int, defaultText: "64"),
        Option(name: "max-header-bytes", type: .int, defaultText: "\(16 << 10)"),
        Option(name: "idle-timeout", type: .string, defaultText: "30s"),
        Option(name: "tls-cert", type: .string, defaultText: "none"),
        Option(name: "tls-key", type: .string, defaultText: "none"),
        Option(name: "trusted-proxy", type: .stringArray, defaultText: "none"),
        Option(name: "node-name", type: .string, defaultText: "the host name"),
        Option(name: "log-level", type: .string, defaultText: "info"),
        Option(name: "log-format", type: .string, defaultText: "text"),
    ]

    private(set) var values: [String: (content: ConfigContent, source: Source)] = [:]

    /// Resolves every option: `flags` holds the ones given on the command line.
    init(flags: [String: ConfigContent], file: String?, environment: [String: String]) throws {
        let prefixed = environment.filter { $0.key.hasPrefix("REWIND_") }
        let environmentProvider = EnvironmentVariablesProvider(environmentVariables: prefixed, secretsSpecifier: .all)
        let snapshot = try file.map(Self.readFile)
        for option in Self.options {
            if let flag = flags[option.name] {
                values[option.name] = (flag, .flag)
                continue
            }
            let environmentKey = AbsoluteConfigKey(["REWIND", option.name])
            let lookup: LookupResult
            do {
                lookup = try environmentProvider.value(forKey: environmentKey, type: option.type)
            } catch {
                throw UsageFailure(message: "\(Self.environmentName(option.name)): \(Self.expected(option.type))")
            }
            if let value = lookup.value {
                values[option.name] = (value.content, .environment(lookup.encodedKey))
                continue
            }
            if let (snapshot, path) = snapshot {
                let found: LookupResult
                do {
                    found = try snapshot.value(forKey: AbsoluteConfigKey([option.name]), type: option.type)
                } catch {
                    throw UsageFailure(message: "\(path): '\(option.name)' \(Self.expected(option.type))")
                }
                if let value = found.value { values[option.name] = (value.content, .file(path)) }
            }
        }
    }

    /// The file's snapshot, after checking that it names only known options.
    private static func readFile(_ path: String) throws -> (YAMLSnapshot, String) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CommandFailure(message: "\(path): cannot read the configuration file")
        }
        let keys = Mutex<[String]>([])
        // The parser names every key it reads to the secrets specifier: that is how the unknown ones are found.
        let options = YAMLSnapshot.ParsingOptions(
            secretsSpecifier: .dynamic { key, _ in
                keys.withLock { $0.append(key) }
                return true
            }
        )
        let snapshot: YAMLSnapshot
        do {
            snapshot = try YAMLSnapshot(data: data.bytes, providerName: path, parsingOptions: options)
        } catch {
            throw UsageFailure(message: "\(path): not a YAML mapping of option names to values (\(error))")
        }
        let known = Set(Self.options.map(\.name))
        if let unknown = keys.withLock({ $0 }).sorted().first(where: { !known.contains($0) }) {
            throw UsageFailure(message: "\(path): unknown key '\(unknown)' (keys are the long option names of rewind serve)")
        }
        return (snapshot, path)
    }

    static func environmentName(_ name: String) -> String {
        "REWIND_" + name.uppercased().replacingOccurrences(of: "-", with: "_")
    }

    private static func expected(_ type: ConfigType) -> String {
        switch type {
        case .int: "should be an integer"
        case .double: "should be a number"
        case .stringArray: "should be a list of strings"
        default: "should be a string"
        }
    }

    func string(_ name: String) -> String? {
        switch values[name]?.content {
        case .string(let value): value
        case .int(let value): String(value)
        case .double(let value): String(value)
        default: nil
        }
    }

    /// 0 for a flag, 1 for the environment, 2 for the file; nil when the option is not set.
    func rank(_ name: String) -> Int? {
        switch values[name]?.source {
        case .flag: 0
        case .environment: 1
        case .file: 2
        case .defaultValue, nil: nil
        }
    }

    func int(_ name: String) -> Int? {
        if case .int(let value) = values[name]?.content { return value }
        return nil
    }

    func double(_ name: String) -> Double? {
        switch values[name]?.content {
        case .double(let value): value
        case .int(let value): Double(value)
        default: nil
        }
    }

    func strings(_ name: String) -> [String] {
        if case .stringArray(let value) = values[name]?.content { return value }
        return []
    }

    /// One line per option: name, value and source; secrets and passwords in URLs shown as `<redacted>`.
    func printed() -> String {
        var lines: [String] = []
        let width = Self.options.map(\.name.count).max() ?? 0
        for option in Self.options {
            let name = option.name.padding(toLength: width, withPad: " ", startingAt: 0)
            guard let (content, source) = values[option.name] else {
                lines.append("\(name)  \(option.defaultText)  (default)")
                continue
            }
            var text: String
            switch content {
            case .stringArray(let list): text = "[" + list.joined(separator: ", ") + "]"
            case .int(let value): text = String(value)
            case .double(let value): text = String(value)
            case .string(let value): text = value
            default: text = "\(content)"
            }
            if option.secret || option.name.contains("token") || option.name.contains("password") {
                text = "<redacted>"
            } else {
                text = Self.redactingURLPasswords(text)
            }
            lines.append("\(name)  \(text)  (\(source))")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `scheme://user:password@host` → `scheme://user:<redacted>@host`.
    static func redactingURLPasswords(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].firstIndex(of: "@") else { return text }
        let userInfo = text[scheme.upperBound..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":<redacted>" + String(text[at...])
    }
}
