import Foundation
import Histogram

/// Latency in microseconds, with the percentiles a report quotes.
struct LatencyRecorder {
    private var histogram = Histogram<UInt64>(highestTrackableValue: 600_000_000, numberOfSignificantValueDigits: .three)

    mutating func record(nanoseconds: UInt64) {
        _ = histogram.record(max(1, nanoseconds / 1000))
    }

    var count: UInt64 { histogram.totalCount }

    /// Milliseconds at a percentile.
    func milliseconds(at percentile: Double) -> Double {
        Double(histogram.valueAtPercentile(percentile)) / 1000
    }

    var maxMilliseconds: Double { Double(histogram.max) / 1000 }

    func summary(includingMax: Bool = false) -> [String: Double] {
        var values = ["p50": milliseconds(at: 50), "p99": milliseconds(at: 99), "p999": milliseconds(at: 99.9)]
        if includingMax { values["max"] = maxMilliseconds }
        return values.mapValues { ($0 * 1000).rounded() / 1000 }
    }
}

/// Facts about processes: this one's CPU time, another one's resident memory.
enum ProcessStats {
    static func monotonicNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }

    /// User plus system CPU seconds this process used so far.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
        return Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6 + Double(usage.ru_stime.tv_sec)
            + Double(usage.ru_stime.tv_usec) / 1e6
    }

    /// Resident set size of a process in KiB, from `/proc/PID/status`.
    static func residentKilobytes(pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
        }
        return nil
    }

    /// Raises this process's open-file limit to its hard limit, for thousands of connections.
    static func raiseFileLimit() {
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = limit.rlim_max
        setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
    }
}

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
