import NIOCore
import NIOHTTP1
import NIOPosix

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
