import NIOCore
import NIOPosix

/// `rewind bench ingest`: C keep-alive connections publishing as fast as the server answers.
public struct IngestOptions: Sendable {
    public var publish: URLTemplate
    public var connections: Int
    public var duration: Duration
    /// Events per request; above 1 the body is NDJSON (Rewind's batch publish).
    public var batch: Int
    /// Bytes of data per event.
    public var eventSize: Int
    /// Stop after this many events (used to preload a log); nil: run for `duration`.
    public var maxEvents: Int?
    public var stream: String

    public init(
        publish: URLTemplate,
        connections: Int,
        duration: Duration,
        batch: Int = 1,
        eventSize: Int = 64,
        maxEvents: Int? = nil,
        stream: String
    ) {
        self.publish = publish
        self.connections = connections
        self.duration = duration
        self.batch = batch
        self.eventSize = eventSize
        self.maxEvents = maxEvents
        self.stream = stream
    }
}

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

extension Bench {
    public static func ingest(_ options: IngestOptions) async throws -> BenchReport {
        try await withEventLoop { loop in try await ingest(options, on: loop) }
    }

    static func ingest(_ options: IngestOptions, on loop: any EventLoop) async throws -> BenchReport {
        let state = IngestState(options: options)
        let connector = Connector(loop: loop, host: options.publish.host, port: options.publish.port)
        let target = options.publish.target(stream: options.stream)
        let contentType = options.batch == 1 ? "text/plain" : "application/x-ndjson"
        let cpuBefore = ProcessStats.cpuSeconds()
        let started = ProcessStats.monotonicNanoseconds()
        var channels: [any Channel] = []
        for _ in 0..<options.connections {
            channels.append(
                try await connector.connect {
                    PublishHandler(host: options.publish.host, target: target, contentType: contentType, source: state)
                }.get()
            )
        }
        // Wait for the end, then for the requests still in flight.
        while try await loop.submit({ !state.done || state.inFlight > 0 }).get() {
            if try await loop.submit({ state.disconnects >= options.connections }).get() { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        let seconds = Double(ProcessStats.monotonicNanoseconds() - started) / 1e9
        for channel in channels { try? await channel.close() }
        return try await loop.submit {
            var report = BenchReport()
            report.add("mode", "ingest")
            report.add("connections", options.connections)
            report.add("batch", options.batch)
            report.add("events", state.events)
            report.add("seconds", seconds)
            report.add("events_per_second", Double(state.events) / seconds)
            report.add("requests_per_second", Double(state.requests) / seconds)
            report.add("latency_ms", state.latency.summary())
            report.add("errors", state.errors + state.disconnects)
            report.add("client_cpu_seconds", ProcessStats.cpuSeconds() - cpuBefore)
            return report
        }.get()
    }
}

/// The load generator's benchmarks.
public enum Bench {}
