import NIOCore
import NIOHTTP1
import NIOPosix

/// Where a publisher gets its next request body from, and tells how it went. Called on the event loop only.
protocol PublishSource: AnyObject {
    /// The next body and how many events it holds, or nil if nothing is due now.
    func next() -> (body: ByteBuffer, events: Int)?
    func completed(status: Int, nanoseconds: UInt64, events: Int)
    func disconnected()
}

/// Sends POSTs one after another on a keep-alive connection as its source hands out bodies.
final class PublishHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let host: String
    private let target: String
    private let contentType: String
    private let source: any PublishSource
    private var context: ChannelHandlerContext?
    private var inFlight: (started: UInt64, events: Int)?
    private var status = 0

    init(host: String, target: String, contentType: String, source: any PublishSource) {
        self.host = host
        self.target = target
        self.contentType = contentType
        self.source = source
    }

    func channelActive(context: ChannelHandlerContext) {
        self.context = context
        sendIfDue()
    }

    /// Sends the next request if none is in flight and the source has one due.
    func sendIfDue() {
        guard inFlight == nil, let context, let (body, events) = source.next() else { return }
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: target)
        head.headers.add(name: "Host", value: host)
        head.headers.add(name: "Content-Type", value: contentType)
        head.headers.add(name: "Content-Length", value: String(body.readableBytes))
        inFlight = (ProcessStats.monotonicNanoseconds(), events)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
        case .body:
            break
        case .end:
            if let inFlight {
                source.completed(status: status, nanoseconds: ProcessStats.monotonicNanoseconds() - inFlight.started, events: inFlight.events)
            }
            inFlight = nil
            sendIfDue()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.context = nil
        source.disconnected()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// What a subscriber reports: the events it parsed (`seq` and send time from the payload) and its connection.
protocol SubscriberSink: AnyObject {
    func connected(status: Int)
    func received(sequence: UInt64, sentNanoseconds: UInt64)
    func bytes(_ count: Int)
    func disconnected()
}

/// An SSE client that reads `data: <seq> <nanoseconds>` payloads and nothing more, so it keeps up with a server
/// sending hundreds of thousands of events a second on one thread.
final class SubscribeHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let host: String
    private let target: String
    private let sink: any SubscriberSink
    private var partial: [UInt8] = []

    init(host: String, target: String, sink: any SubscriberSink) {
        self.host = host
        self.target = target
        self.sink = sink
    }

    func channelActive(context: ChannelHandlerContext) {
        var head = HTTPRequestHead(version: .http1_1, method: .GET, uri: target)
        head.headers.add(name: "Host", value: host)
        head.headers.add(name: "Accept", value: "text/event-stream")
        head.headers.add(name: "Cache-Control", value: "no-cache")
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            sink.connected(status: Int(head.status.code))
        case .body(let buffer):
            sink.bytes(buffer.readableBytes)
            scan(buffer)
        case .end:
            break
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        sink.disconnected()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func scan(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { bytes in
            var lineStart = 0
            for index in 0..<bytes.count where bytes[index] == 0x0A {
                if partial.isEmpty {
                    line(UnsafeRawBufferPointer(rebasing: bytes[lineStart..<index]))
                } else {
                    partial.append(contentsOf: bytes[lineStart..<index])
                    partial.withUnsafeBytes { line($0) }
                    partial.removeAll(keepingCapacity: true)
                }
                lineStart = index + 1
            }
            if lineStart < bytes.count { partial.append(contentsOf: bytes[lineStart...]) }
        }
    }

    private func line(_ bytes: UnsafeRawBufferPointer) {
        // "data: " then digits, a space, digits.
        guard bytes.count > 6, bytes[0] == 0x64, bytes[1] == 0x61, bytes[2] == 0x74, bytes[3] == 0x61, bytes[4] == 0x3A else { return }
        var index = bytes[5] == 0x20 ? 6 : 5
        func number() -> UInt64 {
            var value: UInt64 = 0
            while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
                value = value &* 10 &+ UInt64(bytes[index] - 0x30)
                index += 1
            }
            return value
        }
        let sequence = number()
        guard index < bytes.count, bytes[index] == 0x20 else { return }
        index += 1
        sink.received(sequence: sequence, sentNanoseconds: number())
    }
}

/// Opens HTTP/1.1 connections on one event loop.
struct Connector {
    let loop: any EventLoop
    let host: String
    let port: Int

    func connect(_ makeHandler: @escaping @Sendable () -> any ChannelHandler) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(makeHandler())
                }
            }
            .connect(host: host, port: port)
    }
}

/// A payload the subscribers can check: a sequence number, the send time, and padding up to `size` bytes.
func payload(sequence: UInt64, size: Int) -> String {
    var text = "\(sequence) \(ProcessStats.monotonicNanoseconds())"
    if text.utf8.count < size { text += String(repeating: "x", count: size - text.utf8.count) }
    return text
}
