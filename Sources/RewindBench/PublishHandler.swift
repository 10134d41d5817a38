import NIOCore
import NIOHTTP1

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
