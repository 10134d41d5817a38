import HummingbirdCore
import Logging
import NIOCore

/// Runs a task's jobs on one NIO event loop: a connection's task preferring its channel's loop resumes where its
/// reads arrive and its writes go out, instead of waking a thread of the global pool for every request and
/// every response. Each cross-thread hop costs tens of microseconds of CPU on a small virtual machine, several
/// times the work of a small publish.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

/// A server child channel whose connections are served by tasks that prefer their channel's event loop (see
/// `EventLoopTaskExecutor`). Child tasks (HTTP/2 streams, `async let`) inherit the preference; work that blocks
/// never runs there: SQLite goes through GRDB's own queues, PostgreSQL through its driver.
struct EventLoopBoundChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value

    let base: Base

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        base.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await withTaskExecutorPreference(EventLoopTaskExecutor(value.channel.eventLoop)) {
            await base.handle(value: value, logger: logger)
        }
    }
}
