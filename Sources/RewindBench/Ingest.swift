import NIOCore
import NIOPosix

extension Bench {
    public static func ingest(_ options: IngestOptions) async throws -> BenchReport {
        try await withEventLoop { loop in try await ingest(options, on: loop) }
    }

    static func ingest(_ options: IngestOptions, on loop: any EventLoop) async throws -> BenchReport {
        let state = IngestState(options: options)
        let contentType = options.batch == 1 ? "text/plain" : "application/x-ndjson"
        let cpuBefore = ProcessStats.cpuSeconds()
        let started = ProcessStats.monotonicNanoseconds()
        var channels: [any Channel] = []
        for index in 0..<options.connections {
            let publish = options.publish.forConnection(index)
            let target = publish.target(stream: options.stream)
            channels.append(
                try await Connector(loop: loop, host: publish.host, port: publish.port).connect {
                    PublishHandler(host: publish.host, target: target, contentType: contentType, source: state)
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
