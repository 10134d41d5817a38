import Foundation
import Hummingbird
import Prometheus

/// The delivery side's metrics; with the store's, exported at `GET /metrics` from one Prometheus registry per
/// server (no process-wide bootstrap, so several servers in one process, as in the tests, keep their own).
///
/// Every name, type, help text and bucket list is in `MetricsCatalog`, which the metrics list of docs/operations.md follows.
/// Nothing here allocates per delivery: counters are atomics, a histogram sample is one lock and a bucket scan.
struct ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    /// What the store makes its metrics with: the same registry, with the catalog's help texts and buckets.
    let factory: DescribedMetricsFactory
    /// Open SSE streams reading from the window of recent events.
    let liveSubscribers: Gauge
    /// Open SSE streams reading from the log (replaying, or behind the window).
    let catchingUpSubscribers: Gauge
    /// Events written to subscribers.
    let deliveries: Counter
    /// Turns in which a subscriber took its events from the window, without reading the database.
    let windowReads: Counter
    /// Pages read from the log for subscribers (replays, and readers behind the window).
    let logReads: Counter
    /// Times a subscriber reading from the window fell behind it and went back to the log.
    let slowReaderFallbacks: Counter
    let gapSignals: Counter
    let resetSignals: Counter
    /// Publish request received → response written, successful publishes only.
    let publishDuration: DurationHistogram
    /// Event committed → its frame written to a live subscriber's socket, one sample per written batch.
    let deliveryLag: DurationHistogram
    let logHead: Gauge
    let logSize: Gauge
    /// Always 1, labelled with this node's name: the Prometheus way to name the process a scrape came from
    /// (`* on(instance) group_left(node) rewind_node_info` adds the name to any series).
    let nodeInfo: Gauge
    /// Commit on another node → this node has read it and woken its subscribers. Recorded by the store, which
    /// makes it through `factory` under the same name; made here too so it is listed whatever the store.
    let crossNodeLag: DurationHistogram

    init(node: String = RewindConfiguration.hostName) {
        registry = PrometheusCollectorRegistry()
        factory = DescribedMetricsFactory(registry: registry)
        liveSubscribers = factory.gauge(.subscribers, [("state", "live")])
        catchingUpSubscribers = factory.gauge(.subscribers, [("state", "catching_up")])
        deliveries = factory.counter(.deliveries)
        windowReads = factory.counter(.windowReads)
        logReads = factory.counter(.logReads)
        slowReaderFallbacks = factory.counter(.slowReaderFallbacks)
        gapSignals = factory.counter(.signals, [("type", "rewind.gap")])
        resetSignals = factory.counter(.signals, [("type", "rewind.reset")])
        publishDuration = factory.durationHistogram(.publishDuration)
        deliveryLag = factory.durationHistogram(.deliveryLag)
        logHead = factory.gauge(.logHead)
        logSize = factory.gauge(.logSize)
        nodeInfo = factory.gauge(.nodeInfo, [("node", node)])
        nodeInfo.set(to: 1)
        crossNodeLag = factory.durationHistogram(.crossNodeLag)
    }

    /// Where a subscriber reads from; it counts in `rewind_subscribers` under this state.
    enum Source: Sendable {
        case catchingUp
        case live
    }

    /// What the metrics know of one subscriber, kept by its session.
    struct SubscriberState: Sendable {
        var source = Source.catchingUp
        /// The subscriber has waited for a commit at least once: from then on its deliveries are live events, and
        /// their lag is measured. Before, it replays history, whose age says nothing about delivery.
        var waited = false
    }

    /// A subscriber opened: it counts as catching up until its first read from the window.
    func subscriberJoined() -> SubscriberState {
        catchingUpSubscribers.increment()
        return SubscriberState()
    }

    func subscriberLeft(_ state: SubscriberState) {
        gauge(state.source).decrement()
    }

    /// The subscriber was caught up and a commit woke it.
    func woke(_ state: inout SubscriberState) {
        state.waited = true
    }

    /// A subscriber took its events from the window this turn.
    func readWindow(_ state: inout SubscriberState) {
        windowReads.increment()
        move(&state, to: .live)
    }

    /// A subscriber read a page from the log this turn.
    func readLog(_ state: inout SubscriberState) {
        logReads.increment()
        move(&state, to: .catchingUp)
    }

    /// A batch of `events` was written to a subscriber at `written`; `newestCommit` is when the newest of them was
    /// committed, known for batches from the window. Lag is measured once the subscriber has waited for a commit:
    /// a replay (from the log, or from the window right after connecting) may send history of any age.
    func delivered(
        _ events: Int,
        newestCommit: ContinuousClock.Instant?,
        written: ContinuousClock.Instant,
        state: SubscriberState
    ) {
        deliveries.increment(by: Int64(events))
        if state.waited, let newestCommit { deliveryLag.record(written - newestCommit) }
    }

    /// A response body that records the publish's duration once it has been written: "response sent" is when the
    /// last byte went to the connection, not when the handler returned.
    func timingPublish(_ body: ResponseBody, since received: ContinuousClock.Instant) -> ResponseBody {
        let histogram = publishDuration
        return ResponseBody(contentLength: body.contentLength) { writer in
            try await body.write(writer)
            histogram.record(.now - received)
        }
    }

    /// Sets the log's gauges just before a scrape: the head id and the size the store reports for itself (left as
    /// it was when the store cannot tell).
    func refreshLog(head: Int64, bytes: Int64?) {
        logHead.set(to: Double(head))
        if let bytes { logSize.set(to: Double(bytes)) }
    }

    private func move(_ state: inout SubscriberState, to new: Source) {
        guard state.source != new else { return }
        gauge(new).increment()
        gauge(state.source).decrement()
        state.source = new
    }

    private func gauge(_ source: Source) -> Gauge {
        switch source {
        case .live: liveSubscribers
        case .catchingUp: catchingUpSubscribers
        }
    }
}
