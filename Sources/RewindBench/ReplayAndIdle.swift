import NIOCore
import NIOHTTP1
import NIOPosix

/// `rewind bench replay`: N stored events read from the oldest over one SSE connection.
public struct ReplayOptions: Sendable {
    public var publish: URLTemplate
    /// Must start from the oldest event, e.g. Rewind's `...?from=earliest`.
    public var subscribe: URLTemplate
    public var events: Int
    /// Events per preload request (NDJSON above 1).
    public var preloadBatch: Int
    public var preloadConnections: Int
    public var eventSize: Int
    public var stream: String
    /// Publish the events first; false when the stream already holds them.
    public var preload: Bool

    public init(
        publish: URLTemplate,
        subscribe: URLTemplate,
        events: Int,
        preloadBatch: Int = 1,
        preloadConnections: Int = 8,
        eventSize: Int = 64,
        stream: String,
        preload: Bool = true
    ) {
        self.publish = publish
        self.subscribe = subscribe
        self.events = events
        self.preloadBatch = preloadBatch
        self.preloadConnections = preloadConnections
        self.eventSize = eventSize
        self.stream = stream
        self.preload = preload
    }
}

/// `rewind bench idle`: N SSE connections held open without traffic; what each costs the server.
public struct IdleOptions: Sendable {
    public var subscribe: URLTemplate
    public var connections: Int
    public var stream: String
    public var serverPID: Int32
    public var hold: Duration

    public init(subscribe: URLTemplate, connections: Int, stream: String, serverPID: Int32, hold: Duration = .seconds(2)) {
        self.subscribe = subscribe
        self.connections = connections
        self.stream = stream
        self.serverPID = serverPID
        self.hold = hold
    }
}

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
            let (events, bytes, last) = try await loop.submit { (counter.value.events, counter.value.bytes, counter.value.lastEvent) }.get()
            try? await channel.close()
            let seconds = Double(max(last, started + 1) - started) / 1e9
            report.add("received", events)
            report.add("seconds", seconds)
            report.add("events_per_second", Double(events) / seconds)
            report.add("mb_per_second", Double(bytes) / seconds / 1_048_576)
            return report
        }
    }

    public static func idle(_ options: IdleOptions) async throws -> BenchReport {
        ProcessStats.raiseFileLimit()
        return try await withEventLoop { loop in
            guard let before = ProcessStats.residentKilobytes(pid: options.serverPID) else {
                throw BenchError("no process \(options.serverPID) to measure")
            }
            let target = options.subscribe.target(stream: options.stream)
            let connector = Connector(loop: loop, host: options.subscribe.host, port: options.subscribe.port)
            var counters: [NIOLoopBound<EventCounter>] = []
            var channels: [any Channel] = []
            for chunkStart in stride(from: 0, to: options.connections, by: 500) {
                var futures: [EventLoopFuture<any Channel>] = []
                for _ in chunkStart..<min(options.connections, chunkStart + 500) {
                    let counter = try await loop.submit { NIOLoopBound(EventCounter(), eventLoop: loop) }.get()
                    counters.append(counter)
                    futures.append(connector.connect { SubscribeHandler(host: options.subscribe.host, target: target, sink: counter.value) })
                }
                for future in futures { channels.append(try await future.get()) }
            }
            let all = counters
            try await waitUntil(loop, timeout: .seconds(120), "every idle connection to be answered") {
                all.allSatisfy { $0.value.status != 0 || $0.value.isDisconnected }
            }
            try await Task.sleep(for: options.hold)
            let after = ProcessStats.residentKilobytes(pid: options.serverPID) ?? before
            let open = try await loop.submit { all.filter { $0.value.status == 200 && !$0.value.isDisconnected }.count }.get()
            for channel in channels { try? await channel.close() }
            var report = BenchReport()
            report.add("mode", "idle")
            report.add("connections", options.connections)
            report.add("open", open)
            report.add("server_rss_kb_before", before)
            report.add("server_rss_kb_after", after)
            report.add("rss_kb_per_connection", Double(after - before) / Double(max(1, open)))
            return report
        }
    }
}
