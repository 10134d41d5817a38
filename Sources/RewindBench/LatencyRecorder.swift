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
