import NIOCore

/// Hands a handler created inside a channel initializer to the benchmark's timers.
final class PublisherBox: @unchecked Sendable {
    var handlers: [NIOLoopBound<PublishHandler>] = []
}
