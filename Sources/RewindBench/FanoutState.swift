import NIOCore

/// Paces the publishers; collects what the subscribers saw. Confined to the benchmark's event loop.
final class FanoutState: @unchecked Sendable {
    let options: FanoutOptions
    var checkers: [SequenceChecker] = []
    var latency = LatencyRecorder()
    /// Request to answer of each successful publish: how much of the delivery latency the commit takes.
    var publishLatency = LatencyRecorder()
    var deliveries = 0
    var lastDelivery: UInt64 = 0
    var sent: UInt64 = 0
    var perPublisherSent: [UInt64]
    var published: UInt64 = 0
    var publishErrors = 0
    var inFlight = 0
    var started: UInt64 = 0
    var deadline: UInt64 = 0

    init(options: FanoutOptions) {
        self.options = options
        perPublisherSent = Array(repeating: 0, count: options.publishers)
    }

    func start() {
        started = ProcessStats.monotonicNanoseconds()
        let (seconds, attoseconds) = options.duration.components
        deadline = started + UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }

    var publishing: Bool { started == 0 || ProcessStats.monotonicNanoseconds() < deadline || inFlight > 0 }

    func next(publisher: Int) -> (body: ByteBuffer, events: Int)? {
        let now = ProcessStats.monotonicNanoseconds()
        guard started > 0, now < deadline, sent < UInt64(Double(now - started) / 1e9 * Double(options.rate)) + 1 else { return nil }
        var body = ByteBuffer()
        let sequence = perPublisherSent[publisher] * UInt64(options.publishers) + UInt64(publisher)
        body.writeString(payload(sequence: sequence, size: options.eventSize))
        perPublisherSent[publisher] += 1
        sent += 1
        inFlight += 1
        return (body, 1)
    }

    func completed(status: Int, nanoseconds: UInt64, events: Int) {
        inFlight -= 1
        if (200..<300).contains(status) {
            published += 1
            publishLatency.record(nanoseconds: nanoseconds)
        } else {
            publishErrors += 1
        }
    }

    func disconnected() { publishErrors += 1 }

    func record(sentNanoseconds: UInt64, slow: Bool) {
        let now = ProcessStats.monotonicNanoseconds()
        deliveries += 1
        lastDelivery = now
        if !slow, now > sentNanoseconds { latency.record(nanoseconds: now - sentNanoseconds) }
    }

    /// One publishing connection's view of the shared pacing.
    final class Publisher: PublishSource {
        unowned let state: FanoutState
        let index: Int
        init(state: FanoutState, index: Int) {
            self.state = state
            self.index = index
        }
        func next() -> (body: ByteBuffer, events: Int)? { state.next(publisher: index) }
        func completed(status: Int, nanoseconds: UInt64, events: Int) { state.completed(status: status, nanoseconds: nanoseconds, events: events) }
        func disconnected() { state.disconnected() }
    }

    /// True when every subscriber has every published event (or gave up by disconnecting).
    var drained: Bool { checkers.allSatisfy { $0.received >= published || $0.isDisconnected } }
}
