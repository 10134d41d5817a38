import NIOCore

/// Shared counters of the publishing connections; confined to the benchmark's single event loop.
final class IngestState: PublishSource, @unchecked Sendable {
    var latency = LatencyRecorder()
    var events = 0
    var requests = 0
    var errors = 0
    var disconnects = 0
    var inFlight = 0
    var sequence: UInt64 = 0
    var firstError: Int?
    let deadline: UInt64
    let options: IngestOptions

    init(options: IngestOptions) {
        self.options = options
        let (seconds, attoseconds) = options.duration.components
        deadline = ProcessStats.monotonicNanoseconds() + UInt64(seconds) * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000)
    }

    var done: Bool {
        ProcessStats.monotonicNanoseconds() >= deadline || options.maxEvents.map { Int(sequence) >= $0 } == true
    }

    func next() -> (body: ByteBuffer, events: Int)? {
        guard !done else { return nil }
        let count = options.maxEvents.map { min(options.batch, $0 - Int(sequence)) } ?? options.batch
        var body = ByteBuffer()
        if options.batch == 1 {
            body.writeString(payload(sequence: sequence, size: options.eventSize))
        } else {
            for offset in 0..<count {
                body.writeString("{\"data\":\"")
                body.writeString(payload(sequence: sequence + UInt64(offset), size: options.eventSize))
                body.writeString("\"}\n")
            }
        }
        sequence += UInt64(count)
        inFlight += 1
        return (body, count)
    }

    func completed(status: Int, nanoseconds: UInt64, events: Int) {
        inFlight -= 1
        requests += 1
        if (200..<300).contains(status) {
            self.events += events
            latency.record(nanoseconds: nanoseconds)
        } else {
            errors += 1
            firstError = firstError ?? status
        }
    }

    /// A connection closed before the run ended.
    func disconnected() { if !done { disconnects += 1 } }
}
