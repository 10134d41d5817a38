/// Counts what one subscriber receives; confined to the benchmark's event loop.
final class EventCounter: SubscriberSink, @unchecked Sendable {
    var status = 0
    var events = 0
    var bytes = 0
    var lastEvent: UInt64 = 0
    var isDisconnected = false

    func connected(status: Int) { self.status = status }
    func received(sequence: UInt64, sentNanoseconds: UInt64) {
        events += 1
        lastEvent = ProcessStats.monotonicNanoseconds()
    }
    func bytes(_ count: Int) { bytes += count }
    func disconnected() { isDisconnected = true }
}
