/// One subscriber's view of the sequence; confined to the benchmark's event loop.
///
/// Sequence numbers interleave the publishers: `n * publishers + publisher`. Each publisher's events must arrive
/// once each and in the order it sent them.
final class SequenceChecker: SubscriberSink, @unchecked Sendable {
    var status = 0
    var received: UInt64 = 0
    private var nextExpected: [UInt64]
    private let publishers: UInt64
    var duplicates = 0
    var reorders = 0
    var isDisconnected = false
    private var seen: [UInt64] = []
    private let onEvent: (UInt64) -> Void

    init(publishers: Int, onEvent: @escaping (UInt64) -> Void) {
        self.publishers = UInt64(publishers)
        self.nextExpected = Array(repeating: 0, count: publishers)
        self.onEvent = onEvent
    }

    func connected(status: Int) { self.status = status }
    func bytes(_ count: Int) {}
    func disconnected() { isDisconnected = true }

    func received(sequence: UInt64, sentNanoseconds: UInt64) {
        let word = Int(sequence / 64)
        let bit = UInt64(1) << (sequence % 64)
        if word >= seen.count { seen += Array(repeating: 0, count: word - seen.count + 1024) }
        if seen[word] & bit != 0 {
            duplicates += 1
            return
        }
        seen[word] |= bit
        received += 1
        let publisher = Int(sequence % publishers)
        let n = sequence / publishers
        if n < nextExpected[publisher] { reorders += 1 } else { nextExpected[publisher] = n + 1 }
        onEvent(sentNanoseconds)
    }
}
