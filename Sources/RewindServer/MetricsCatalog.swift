import CoreMetrics
import Prometheus

/// Every metric Rewind exports: name, type, help text and, for histograms, the buckets.
///
/// One table, so help texts are the same wherever a metric is made (the registry refuses two texts for one name)
/// and the store, which knows only swift-metrics, still gets help texts and buckets through
/// `DescribedMetricsFactory`. The "Metrics" section of docs/operations.md lists the same names; a test compares it with `/metrics`.
enum MetricsCatalog {
    enum Kind: Sendable {
        case counter
        case gauge
        case durationHistogram([Duration])
        case valueHistogram([Double])
    }

    struct Entry: Sendable {
        let name: String
        let kind: Kind
        let help: String
    }

    /// Latencies from 50 µs (a commit on a fast disk, a write to a waiting socket) to 10 s.
    static let latencyBuckets: [Duration] = [
        .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
        .milliseconds(1), .microseconds(2500), .milliseconds(5), .milliseconds(10), .milliseconds(25),
        .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .milliseconds(2500), .seconds(5), .seconds(10),
    ]

    /// Sizes of a commit group, requests or events: one to tens of thousands.
    static let groupBuckets: [Double] = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 20000, 50000]

    static let entries: [String: Entry] = Dictionary(
        uniqueKeysWithValues: [
            // Store (RewindStore's StoreMetrics).
            Entry(name: "rewind_events_appended_total", kind: .counter, help: "Events committed to the log."),
            Entry(name: "rewind_appended_bytes_total", kind: .counter, help: "Bytes of event data committed to the log."),
            Entry(
                name: "rewind_commits_total",
                kind: .counter,
                help: "Transactions committed by the writer (each holds a group of publish requests)."
            ),
            Entry(
                name: "rewind_commit_duration_seconds",
                kind: .durationHistogram(latencyBuckets),
                help: "Time the writer took for one group commit, successful or not."
            ),
            Entry(
                name: "rewind_commit_requests",
                kind: .valueHistogram(groupBuckets),
                help: "Publish requests committed together in one transaction."
            ),
            Entry(name: "rewind_commit_events", kind: .valueHistogram(groupBuckets), help: "Events committed together in one transaction."),
            Entry(
                name: "rewind_idempotent_replays_total",
                kind: .counter,
                help: "Publish requests answered with an earlier result because their Idempotency-Key was used before."
            ),
            Entry(name: "rewind_commit_failures_total", kind: .counter, help: "Group commits that failed; every request in the group got an error."),
            Entry(
                name: "rewind_store_errors_total",
                kind: .counter,
                help: "Failed commits by kind: disk_full, read_only, io, busy, corrupt, other."
            ),
            // Delivery (ServerMetrics).
            Entry(
                name: "rewind_subscribers",
                kind: .gauge,
                help: "Open SSE streams by state: live reads from the window of recent events, catching_up reads from the log."
            ),
            Entry(name: "rewind_deliveries_total", kind: .counter, help: "Events written to subscribers."),
            Entry(
                name: "rewind_window_reads_total",
                kind: .counter,
                help: "Turns in which a subscriber took its events from the window of recent events, without reading the database."
            ),
            Entry(
                name: "rewind_log_reads_total",
                kind: .counter,
                help: "Pages read from the log for subscribers (replays, and readers behind the window)."
            ),
            Entry(
                name: "rewind_slow_reader_fallbacks_total",
                kind: .counter,
                help: "Times a subscriber reading from the window fell behind it and went back to the log."
            ),
            Entry(name: "rewind_signals_total", kind: .counter, help: "rewind.gap and rewind.reset signals sent to subscribers, by type."),
            Entry(
                name: "rewind_publish_duration_seconds",
                kind: .durationHistogram(latencyBuckets),
                help: "Successful publish requests: request received to response written."
            ),
            Entry(
                name: "rewind_delivery_lag_seconds",
                kind: .durationHistogram(latencyBuckets),
                help: "Event committed to its frame written to a live subscriber's socket; one sample per written batch, for its newest event."
            ),
            Entry(name: "rewind_log_head", kind: .gauge, help: "Id of the newest event in the log."),
            Entry(name: "rewind_node_info", kind: .gauge, help: "Always 1; the node label is this server's --node-name."),
            Entry(
                name: "rewind_cross_node_lag_seconds",
                kind: .durationHistogram(latencyBuckets),
                help: "Commit on another node sharing the database to this node having read it and woken its subscribers, from the commit's time."
            ),
            Entry(name: "rewind_log_size_bytes", kind: .gauge, help: "Size of the database on disk: the main file and its write-ahead log."),
        ].map { ($0.name, $0) }
    )

    /// The help text for `name`; a name missing from the catalog is a programming error.
    static func entry(_ name: String) -> Entry {
        guard let entry = entries[name] else { preconditionFailure("metric \(name) is not in MetricsCatalog") }
        return entry
    }
}

/// Names of the server's own metrics, so a typo does not compile.
enum ServerMetricName: String {
    case subscribers = "rewind_subscribers"
    case deliveries = "rewind_deliveries_total"
    case windowReads = "rewind_window_reads_total"
    case logReads = "rewind_log_reads_total"
    case slowReaderFallbacks = "rewind_slow_reader_fallbacks_total"
    case signals = "rewind_signals_total"
    case publishDuration = "rewind_publish_duration_seconds"
    case deliveryLag = "rewind_delivery_lag_seconds"
    case logHead = "rewind_log_head"
    case logSize = "rewind_log_size_bytes"
    case nodeInfo = "rewind_node_info"
    case crossNodeLag = "rewind_cross_node_lag_seconds"
}

/// A swift-metrics factory over one Prometheus registry that takes help texts and buckets from `MetricsCatalog`,
/// for the store, which makes its metrics through swift-metrics and knows nothing of Prometheus.
struct DescribedMetricsFactory: MetricsFactory {
    let registry: PrometheusCollectorRegistry

    func counter(_ name: ServerMetricName, _ labels: [(String, String)] = []) -> Prometheus.Counter {
        registry.makeCounter(descriptor: Self.descriptor(name.rawValue), labels: labels)
    }

    func gauge(_ name: ServerMetricName, _ labels: [(String, String)] = []) -> Prometheus.Gauge {
        registry.makeGauge(descriptor: Self.descriptor(name.rawValue), labels: labels)
    }

    func durationHistogram(_ name: ServerMetricName) -> DurationHistogram {
        makeDurationHistogram(name.rawValue, [])
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(descriptor: Self.descriptor(label), labels: dimensions)
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(descriptor: Self.descriptor(label), labels: dimensions)
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate, case .valueHistogram(let buckets) = MetricsCatalog.entry(label).kind else {
            return registry.makeGauge(descriptor: Self.descriptor(label), labels: dimensions)
        }
        return registry.makeValueHistogram(descriptor: Self.descriptor(label), labels: dimensions, buckets: buckets)
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(descriptor: Self.descriptor(label), labels: dimensions)
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        makeDurationHistogram(label, dimensions)
    }

    private func makeDurationHistogram(_ name: String, _ labels: [(String, String)]) -> DurationHistogram {
        guard case .durationHistogram(let buckets) = MetricsCatalog.entry(name).kind else {
            preconditionFailure("metric \(name) is not a duration histogram in MetricsCatalog")
        }
        return registry.makeDurationHistogram(descriptor: Self.descriptor(name), labels: labels, buckets: buckets)
    }

    /// The catalog's name and help text; the name is already complete (`_total`, `_seconds` included).
    private static func descriptor(_ name: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: "", helpText: MetricsCatalog.entry(name).help)
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let counter = handler as? Prometheus.Counter { registry.unregisterCounter(counter) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
        if let histogram = handler as? ValueHistogram { registry.unregisterValueHistogram(histogram) }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let gauge = handler as? Prometheus.Gauge { registry.unregisterGauge(gauge) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let histogram = handler as? DurationHistogram { registry.unregisterDurationHistogram(histogram) }
    }
}
