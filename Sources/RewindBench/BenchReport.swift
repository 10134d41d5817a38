import Foundation

/// A benchmark's figures, printed as one JSON object (`--json`) or as aligned lines for a person.
public struct BenchReport: Sendable {
    public var fields: [(String, BenchValue)] = []

    public enum BenchValue: Sendable {
        case int(Int)
        case double(Double)
        case string(String)
        case object([String: Double])
    }

    mutating func add(_ key: String, _ value: Int) { fields.append((key, .int(value))) }
    mutating func add(_ key: String, _ value: Double) { fields.append((key, .double((value * 1000).rounded() / 1000))) }
    mutating func add(_ key: String, _ value: String) { fields.append((key, .string(value))) }
    mutating func add(_ key: String, _ value: [String: Double]) { fields.append((key, .object(value))) }

    public var json: String {
        func encode(_ value: BenchValue) -> String {
            switch value {
            case .int(let number): return String(number)
            case .double(let number): return number.isFinite ? String(number) : "null"
            case .string(let text):
                return "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
            case .object(let values):
                return "{" + values.sorted { $0.key < $1.key }.map { "\"\($0.key)\":\(encode(.double($0.value)))" }.joined(separator: ",") + "}"
            }
        }
        return "{" + fields.map { "\"\($0.0)\":\(encode($0.1))" }.joined(separator: ",") + "}"
    }

    public var text: String {
        fields.map { key, value in
            let shown: String =
                switch value {
                case .int(let number): String(number)
                case .double(let number): String(number)
                case .string(let text): text
                case .object(let values): values.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                }
            return key.padding(toLength: 26, withPad: " ", startingAt: 0) + shown
        }.joined(separator: "\n")
    }
}
