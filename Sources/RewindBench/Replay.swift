import NIOCore
import NIOPosix

extension Bench {
    public static func replay(_ options: ReplayOptions) async throws -> BenchReport {
        var report = BenchReport()
        report.add("mode", "replay")
        report.add("events", options.events)
        if options.preload {
            let preload = try await ingest(
                IngestOptions(
                    publish: options.publish,
                    connections: options.preloadConnections,
                    duration: .seconds(3600),
                    batch: options.preloadBatch,
                    eventSize: options.eventSize,
                    maxEvents: options.events,
                    stream: options.stream
                )
            )
            for (key, value) in preload.fields where key == "events_per_second" || key == "errors" {
                report.fields.append(("preload_" + key, value))
            }
        }
        return try await withEventLoop { loop in
            let counter = try await loop.submit { NIOLoopBound(EventCounter(), eventLoop: loop) }.get()
            let target = options.subscribe.target(stream: options.stream)
            let started = ProcessStats.monotonicNanoseconds()
            let channel = try await Connector(loop: loop, host: options.subscribe.host, port: options.subscribe.port).connect {
                SubscribeHandler(host: options.subscribe.host, target: target, sink: counter.value)
            }.get()
            // Until everything arrived, the connection ends, or nothing arrives for 10 s.
            var lastProgress = (count: 0, at: ContinuousClock.now)
            while true {
                let (events, disconnected) = try await loop.submit { (counter.value.events, counter.value.isDisconnected) }.get()
                if events >= options.events || disconnected { break }
                if events > lastProgress.count {
                    lastProgress = (events, .now)
                } else if ContinuousClock.now - lastProgress.at > .seconds(10) {
                    break
                }
                try await Task.sleep(for: .milliseconds(10))
            }
            let (events, bytes, last, disconnected) = try await loop.submit {
                (counter.value.events, counter.value.bytes, counter.value.lastEvent, counter.value.isDisconnected)
            }.get()
            try? await channel.close()
            guard events >= options.events else {
                throw BenchError(
                    "the replay received \(events) of \(options.events) events before "
                        + (disconnected ? "the server closed the connection" : "nothing more arrived for 10 s")
                        + "; the subscribe URL must start from the oldest event (Rewind: ?from=earliest) and the stream "
                        + "must hold --events events"
                )
            }
            let seconds = Double(max(last, started + 1) - started) / 1e9
            report.add("received", events)
            report.add("seconds", seconds)
            report.add("events_per_second", Double(events) / seconds)
            report.add("mb_per_second", Double(bytes) / seconds / 1_048_576)
            return report
        }
    }
}
