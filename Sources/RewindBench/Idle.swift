import NIOCore
import NIOPosix

extension Bench {
    public static func idle(_ options: IdleOptions) async throws -> BenchReport {
        ProcessStats.raiseFileLimit()
        return try await withEventLoop { loop in
            guard let before = ProcessStats.residentKilobytes(pid: options.serverPID) else {
                throw BenchError("no process \(options.serverPID) to measure")
            }
            var counters: [NIOLoopBound<EventCounter>] = []
            var channels: [any Channel] = []
            for chunkStart in stride(from: 0, to: options.connections, by: 500) {
                var futures: [EventLoopFuture<any Channel>] = []
                for index in chunkStart..<min(options.connections, chunkStart + 500) {
                    let subscribe = options.subscribe.forConnection(index)
                    let target = subscribe.target(stream: options.stream)
                    let connector = Connector(loop: loop, host: subscribe.host, port: subscribe.port)
                    let counter = try await loop.submit { NIOLoopBound(EventCounter(), eventLoop: loop) }.get()
                    counters.append(counter)
                    futures.append(connector.connect { SubscribeHandler(host: subscribe.host, target: target, sink: counter.value) })
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
