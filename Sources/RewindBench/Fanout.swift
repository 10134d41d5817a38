import NIOCore
import NIOHTTP1
import NIOPosix

/// `rewind bench fanout`: S SSE subscribers on one stream while one publisher sends R events a second for T;
/// every subscriber checks it got every event once, in order.
public struct FanoutOptions: Sendable {
    public var publish: URLTemplate
    public var subscribe: URLTemplate
    public var subscribers: Int
    public var rate: Int
    public var duration: Duration
    public var eventSize: Int
    public var stream: String
    /// The server's process id, to report its resident memory.
    public var serverPID: Int32?
    /// Publishing connections, each with one request in flight. Events of one connection are committed in the
    /// order it sent them, which is what each subscriber checks; several are needed when commits are slower than
    /// the rate (a server busy delivering to thousands answers each publish later).
    public var publishers: Int
    /// Subscribers that read one small chunk a second from their socket while events are published, then read at
    /// full speed; they must end with the complete sequence too.
    public var slowSubscribers: Int
    /// How long after publishing ends subscribers may take to receive everything.
    public var drainTimeout: Duration

    public init(
        publish: URLTemplate,
        subscribe: URLTemplate,
        subscribers: Int,
        rate: Int,
        duration: Duration,
        eventSize: Int = 64,
        stream: String,
        serverPID: Int32? = nil,
        publishers: Int = 1,
        slowSubscribers: Int = 0,
        drainTimeout: Duration = .seconds(120)
    ) {
        self.publishers = max(1, publishers)
        self.publish = publish
        self.subscribe = subscribe
        self.subscribers = subscribers
        self.rate = rate
        self.duration = duration
        self.eventSize = eventSize
        self.stream = stream
        self.serverPID = serverPID
        self.slowSubscribers = slowSubscribers
        self.drainTimeout = drainTimeout
    }
}

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

/// Paces the publishers; collects what the subscribers saw. Confined to the benchmark's event loop.
final class FanoutState: @unchecked Sendable {
    let options: FanoutOptions
    var checkers: [SequenceChecker] = []
    var latency = LatencyRecorder()
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
        if (200..<300).contains(status) { published += 1 } else { publishErrors += 1 }
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
        let subscribeTarget = options.subscribe.target(stream: options.stream)
        var channels: [any Channel] = []
        var slowChannels: [any Channel] = []
        for chunkStart in stride(from: 0, to: options.subscribers, by: 200) {
            var futures: [EventLoopFuture<any Channel>] = []
            for index in chunkStart..<min(options.subscribers, chunkStart + 200) {
                let slow = index < options.slowSubscribers
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
                                SubscribeHandler(host: options.subscribe.host, target: subscribeTarget, sink: checker.value)
                            )
                        }
                    }
                    .connect(host: options.subscribe.host, port: options.subscribe.port)
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
        let publishTarget = options.publish.target(stream: options.stream)
        let publisherBox = PublisherBox()
        var publishers: [any Channel] = []
        for index in 0..<options.publishers {
            let source = try await loop.submit { NIOLoopBound(FanoutState.Publisher(state: state, index: index), eventLoop: loop) }.get()
            publishers.append(
                try await Connector(loop: loop, host: options.publish.host, port: options.publish.port).connect {
                    let handler = PublishHandler(host: options.publish.host, target: publishTarget, contentType: "text/plain", source: source.value)
                    publisherBox.handlers.append(NIOLoopBound(handler, eventLoop: loop))
                    return handler
                }.get()
            )
        }
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
            report.add("gaps", state.checkers.reduce(0) { $0 + Int(published - min(published, $1.received)) })
            report.add("duplicates", state.checkers.reduce(0) { $0 + $1.duplicates })
            report.add("reorders", state.checkers.reduce(0) { $0 + $1.reorders })
            report.add("disconnects", state.checkers.filter(\.isDisconnected).count)
            report.add("incomplete_subscribers", state.checkers.filter { $0.received < published }.count)
            if let rssBefore { report.add("server_rss_kb_before", rssBefore) }
            if let rssAfterPublishing { report.add("server_rss_kb_end_of_publishing", rssAfterPublishing) }
            if let rssAfter { report.add("server_rss_kb_after", rssAfter) }
            if options.serverPID != nil { report.add("server_rss_kb_max", maxRSS) }
            report.add("client_cpu_seconds", ProcessStats.cpuSeconds() - cpuBefore)
            return report
        }.get()
        for publisher in publishers { try? await publisher.close() }
        for channel in channels { try? await channel.close() }
        return report
    }

    /// Runs a benchmark on one event loop thread of its own, the only thread the client uses.
    static func withEventLoop<T: Sendable>(_ body: (any EventLoop) async throws -> T) async throws -> T {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        do {
            let result = try await body(group.next())
            try await group.shutdownGracefully()
            return result
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }

    /// Polls a condition on the event loop until it holds.
    static func waitUntil(_ loop: any EventLoop, timeout: Duration, _ what: String, _ condition: @escaping @Sendable () -> Bool) async throws {
        let start = ContinuousClock.now
        while try await !loop.submit(condition).get() {
            guard ContinuousClock.now - start < timeout else { throw BenchError("timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// Hands a handler created inside a channel initializer to the benchmark's timers.
final class PublisherBox: @unchecked Sendable {
    var handlers: [NIOLoopBound<PublishHandler>] = []
}
