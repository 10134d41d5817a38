import CoreMetrics
import Prometheus

/// The delivery side's metrics; with the store's, exported at `GET /metrics` from one Prometheus registry per
/// server (no process-wide bootstrap, so several servers in one process, as in the tests, keep their own).
struct ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    /// Open SSE streams.
    let subscribers: CoreMetrics.Meter
    /// Events written to subscribers.
    let deliveries: CoreMetrics.Counter
    /// Pages read from the log for subscribers (replays, and readers behind the window).
    let logReads: CoreMetrics.Counter
    /// Times a subscriber reading from the window fell behind it and went back to the log.
    let slowReaderFallbacks: CoreMetrics.Counter
    let gapSignals: CoreMetrics.Counter
    let resetSignals: CoreMetrics.Counter

    init() {
        registry = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: registry)
        subscribers = CoreMetrics.Meter(label: "rewind_subscribers", factory: factory)
        deliveries = CoreMetrics.Counter(label: "rewind_deliveries_total", factory: factory)
        logReads = CoreMetrics.Counter(label: "rewind_log_reads_total", factory: factory)
        slowReaderFallbacks = CoreMetrics.Counter(label: "rewind_slow_reader_fallbacks_total", factory: factory)
        gapSignals = CoreMetrics.Counter(label: "rewind_signals_total", dimensions: [("type", "rewind.gap")], factory: factory)
        resetSignals = CoreMetrics.Counter(label: "rewind_signals_total", dimensions: [("type", "rewind.reset")], factory: factory)
    }
}
