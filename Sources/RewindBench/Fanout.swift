import NIOCore
import NIOHTTP1
import NIOPosix

extension Bench {
    public static func fanout(_ options: FanoutOptions) async throws -> BenchReport {
        ProcessStats.raiseFileLimit()
        return try await withEventLoop { loop in try await fanout(options, on: loop) }
    }

    private static func fanout(_ options: FanoutOptions, on loop: any EventLoop) async throws -> BenchReport {
        let state = FanoutState(options: options)
        let rssBefore = options.serverPID.flatMap(ProcessStats.residentKilobytes)
        var maxRSS = rssBefore ?? 0
        let cpuBefore = ProcessStats.cpuSeconds()

        // Subscribers first, all connected before the first event.
        var channels: [any Channel] = []
        var slowChannels: [any Channel] = []
        for chunkStart in stride(from: 0, to: options.subscribers, by: 200) {
            var futures: [EventLoopFuture<any Channel>] = []
            for index in chunkStart..<min(options.subscribers, chunkStart + 200) {
                let slow = index < options.slowSubscribers
                let subscribe = options.subscribe.forConnection(index)
                let subscribeTarget = subscribe.target(stream: options.stream)
                let checker = try await loop.submit {
                    let checker = SequenceChecker(publishers: options.publishers) { sentAt in state.record(sentNanoseconds: sentAt, slow: slow) }
                    state.checkers.append(checker)
                    return NIOLoopBound(checker, eventLoop: loop)
                }.get()
                let bootstrapFuture = ClientBootstrap(group: loop)
                    .channelOption(.socketOption(.tcp_nodelay), value: 1)
                    .channelOption(.autoRead, value: !slow)
                    .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: slow ? 128 : 64 * 1024))
                    .channelOption(.socketOption(.so_rcvbuf), value: slow ? 4096 : 256 * 1024)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHTTPClientHandlers()
                            try channel.pipeline.syncOperations.addHandler(
                                SubscribeHandler(host: subscribe.host, target: subscribeTarget, sink: checker.value)
                            )
                        }
                    }
                    .connect(host: subscribe.host, port: subscribe.port)
                futures.append(bootstrapFuture)
                if slow { slowChannels.append(try await bootstrapFuture.get()) }
            }
            for future in futures { channels.append(try await future.get()) }
        }
        // The slow ones read one small chunk a second (their sockets do not read on their own).
        let slow = slowChannels
        let pacing = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .seconds(1)) { _ in
            for channel in slow { channel.read() }
        }
        try await waitUntil(loop, timeout: .seconds(60), "every subscriber to be answered") {
            state.checkers.allSatisfy { $0.status != 0 || $0.isDisconnected }
        }
        let refused = try await loop.submit { state.checkers.filter { $0.status != 200 }.count }.get()
        guard refused == 0 else { throw BenchError("\(refused) subscribers were not answered 200") }

        // The publishers, paced by a 1 ms timer and by their own responses.
        let publisherBox = PublisherBox()
        var publishers: [any Channel] = []
        for index in 0..<options.publishers {
            let publish = options.publish.forConnection(index)
            let publishTarget = publish.target(stream: options.stream)
            let source = try await loop.submit { NIOLoopBound(FanoutState.Publisher(state: state, index: index), eventLoop: loop) }.get()
            publishers.append(
                try await Connector(loop: loop, host: publish.host, port: publish.port).connect {
                    let handler = PublishHandler(host: publish.host, target: publishTarget, contentType: "text/plain", source: source.value)
                    publisherBox.handlers.append(NIOLoopBound(handler, eventLoop: loop))
                    return handler
                }.get()
            )
        }
        // The server's CPU from the first publish until every subscriber has everything: what publishing and
        // delivering cost it, without connecting the subscribers.
        let serverCPUBefore = options.serverPID.flatMap(ProcessStats.cpuSeconds(pid:))
        try await loop.submit { state.start() }.get()
        let pacer = loop.scheduleRepeatedTask(initialDelay: .zero, delay: .milliseconds(1)) { _ in
            for handler in publisherBox.handlers { handler.value.sendIfDue() }
        }
        while try await loop.submit({ state.publishing }).get() {
            try await Task.sleep(for: .milliseconds(100))
            if let pid = options.serverPID, let rss = ProcessStats.residentKilobytes(pid: pid) { maxRSS = max(maxRSS, rss) }
        }
        pacer.cancel()
        let rssAfterPublishing = options.serverPID.flatMap(ProcessStats.residentKilobytes)
        let serverCPUAfterPublishing = options.serverPID.flatMap(ProcessStats.cpuSeconds(pid:))
        // Let the slow subscribers go at full speed, then wait for everyone to have everything.
        pacing.cancel()
        for channel in slowChannels {
            try await channel.setOption(.autoRead, value: true)
            channel.read()
        }
        let drainStart = ContinuousClock.now
        while try await !loop.submit({ state.drained }).get(), ContinuousClock.now - drainStart < options.drainTimeout {
            try await Task.sleep(for: .milliseconds(50))
            if let pid = options.serverPID, let rss = ProcessStats.residentKilobytes(pid: pid) { maxRSS = max(maxRSS, rss) }
        }
        let rssAfter = options.serverPID.flatMap(ProcessStats.residentKilobytes)
        let serverCPUAfter = options.serverPID.flatMap(ProcessStats.cpuSeconds(pid:))
        let report = try await loop.submit {
            let published = state.published
            let seconds = Double(max(state.lastDelivery, state.deadline) - state.started) / 1e9
            var report = BenchReport()
            report.add("mode", "fanout")
            report.add("subscribers", options.subscribers)
            report.add("slow_subscribers", options.slowSubscribers)
            report.add("rate", options.rate)
            report.add("publishers", options.publishers)
            report.add("seconds", seconds)
            report.add("published", Int(published))
            report.add("publish_errors", state.publishErrors)
            report.add("deliveries", state.deliveries)
            report.add("deliveries_per_second", Double(state.deliveries) / seconds)
            report.add("latency_ms", state.latency.summary(includingMax: true))
            report.add("publish_latency_ms", state.publishLatency.summary())
            report.add("gaps", state.checkers.reduce(0) { $0 + Int(published - min(published, $1.received)) })
            report.add("duplicates", state.checkers.reduce(0) { $0 + $1.duplicates })
            report.add("reorders", state.checkers.reduce(0) { $0 + $1.reorders })
            report.add("disconnects", state.checkers.filter(\.isDisconnected).count)
            report.add("incomplete_subscribers", state.checkers.filter { $0.received < published }.count)
            if let rssBefore { report.add("server_rss_kb_before", rssBefore) }
            if let rssAfterPublishing { report.add("server_rss_kb_end_of_publishing", rssAfterPublishing) }
            if let rssAfter { report.add("server_rss_kb_after", rssAfter) }
            if options.serverPID != nil { report.add("server_rss_kb_max", maxRSS) }
            if let serverCPUBefore, let serverCPUAfterPublishing, let serverCPUAfter {
                // Deliveries go on after the last publish while subscribers catch up, so the CPU per delivery
                // counts until the end of that drain; the publishing phase alone is reported beside it.
                let serverCPU = serverCPUAfter - serverCPUBefore
                report.add("server_cpu_seconds", serverCPU)
                report.add("server_cpu_seconds_publishing", serverCPUAfterPublishing - serverCPUBefore)
                if state.deliveries > 0 { report.add("server_cpu_us_per_delivery", serverCPU / Double(state.deliveries) * 1e6) }
            }
            report.add("client_cpu_seconds", ProcessStats.cpuSeconds() - cpuBefore)
            return report
        }.get()
        for publisher in publishers { try? await publisher.close() }
        for channel in channels { try? await channel.close() }
        return report
    }
}
