import NIOCore
import NIOHTTP1

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
