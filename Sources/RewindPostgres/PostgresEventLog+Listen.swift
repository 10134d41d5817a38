internal import CoreMetrics
internal import Foundation
internal import Logging
internal import NIOCore
internal import PostgresNIO
internal import RewindCore
public import RewindStore
import Synchronization

/// How a node hears of the commits of the other nodes on its database, at once: PostgreSQL's LISTEN/NOTIFY.
///
/// Every group commit notifies channel `rewind_log` from its own transaction (`RETURNING pg_notify(…)` on the head
/// row's update), so PostgreSQL sends the notification only once the commit is visible, and never for one that
/// rolled back. The payload is `HEAD TIME SENDER`: the new head, the commit's time in microseconds since 1970 (the
/// events' `time`) and a random tag naming the log that committed, so a node can tell its own commits from the
/// others' when it measures how late the others' reach it. Each node listens on a connection of its own (not one
/// of the pool's, which serve requests), and on a notification for a head it has not seen runs `catchUp`: that
/// hands the newest events to the server's window of recent events and wakes the caught-up subscribers, which
/// read what they miss from the log in id order, as they always do.
///
/// A notification is lost while the listening connection is down, so the listener reads the head after each
/// LISTEN (anything committed before it is found then, anything after is notified), the server keeps polling the
/// head as a safety net (slowly while the listener is up, fast while it is down), and the listener checks its
/// connection every few seconds, since a connection cut off without a reset could otherwise stay silent for good.
final class CommitListener: Sendable {
    /// The channel every node of a database notifies and listens on. Channels are per database, so logs in other
    /// databases of the same cluster do not hear each other.
    static let channel = "rewind_log"

    /// This log's tag in its notifications.
    let sender: String
    /// Commit on another node → this node has read the new head and woken its subscribers.
    let lag: CoreMetrics.Timer
    private let state: Mutex<Following>

    init(metrics: any MetricsFactory) {
        sender = String(UInt64.random(in: 1...UInt64.max), radix: 36)
        lag = CoreMetrics.Timer(label: "rewind_cross_node_lag_seconds", factory: metrics)
        state = Mutex(.down(since: .now, reason: "not listening yet"))
    }

    var following: Following { state.withLock { $0 } }

    /// The payload of a commit's notification.
    func payload(head: Int64, time: Timestamp) -> String {
        "\(head) \(time.microseconds) \(sender)"
    }

    /// A notification's head, commit time and sender; nil for a payload Rewind did not write.
    static func parse(_ payload: String) -> (head: Int64, time: Int64, sender: Substring)? {
        let parts = payload.split(separator: " ")
        guard parts.count == 3, let head = Int64(parts[0]), let time = Int64(parts[1]) else { return nil }
        return (head, time, parts[2])
    }

    fileprivate func up() {
        state.withLock { $0 = .listening }
    }

    /// Records the listener as down, keeping the time it went down first; true when it was up until now.
    fileprivate func down(_ reason: String) -> Bool {
        state.withLock { state in
            switch state {
            case .down(let since, _):
                state = .down(since: since, reason: reason)
                return false
            case .listening, .polling:
                state = .down(since: .now, reason: reason)
                return true
            }
        }
    }
}

extension PostgresEventLog {
    /// Events of other nodes handed to the commit observer by one `catchUp`, at most: the newest ones. A subscriber
    /// further behind reads the log, as it would anyway, and joins the window once it has caught up.
    static let catchUpWindowEvents: Int64 = 512

    /// How often the listener checks that its connection still answers.
    static let listenerPing: Duration = .seconds(5)

    /// How this node hears of other nodes' commits: listening, or down since when and why.
    public var following: Following { listener.following }

    /// Publishes a head read from the database that this process has not announced: first hands the newest of the
    /// events up to it (other nodes' commits) to the commit observer, so the server's window serves them to every
    /// caught-up subscriber from one read instead of one read per subscriber, then wakes the subscribers. A failed
    /// read only costs that shortcut: subscribers are woken all the same and read the log.
    func announce(head: Int64) async {
        let known = commits.head
        guard head > known else { return }
        var after = known
        var events: [Event] = []
        if commitObserver.withLock({ $0 }) != nil {
            after = max(known, head - Self.catchUpWindowEvents)
            let query = ReadQuery(after: after, filter: .everything, limit: Int(head - after), through: head)
            events = (try? await read(query))?.events ?? []
        }
        handOver(after: after, events, head: head)
    }

    /// Hands events to the commit observer and publishes the head, one caller at a time, leaving out the events
    /// already handed over: a catch-up (the listener, the poll) and a commit's own announcement can reach the same
    /// events in either order, and the observer (the server's window) must hear each event once, in id order.
    func handOver(after previous: Int64, _ events: [Event], head: Int64) {
        handingOver.withLock { _ in
            let known = commits.head
            let fresh = events.drop { $0.id <= known }
            if !fresh.isEmpty, let observer = commitObserver.withLock({ $0 }) {
                observer.handler(max(previous, known), Array(fresh))
            }
            commits.publish(head: head)
        }
    }

    /// Listens for other nodes' commits until the task is cancelled, reconnecting after every failure (100 ms, then
    /// doubling up to 2 s between attempts).
    func listenForCommits() async {
        var pause: Duration = .milliseconds(100)
        var attempt = 0
        while !Task.isCancelled, !writerClosed {
            attempt += 1
            do {
                try await listenOnce(attempt: attempt)
                if Task.isCancelled { return }
                throw StoreError.unavailable("the listening connection ended")
            } catch {
                if Task.isCancelled || writerClosed { return }
                let failure = PostgresFailures.map(error, configuration)
                if listener.down("\(failure)") {
                    // It was listening until now: the first retry comes soon again.
                    pause = .milliseconds(100)
                    logger.warning("stopped hearing other nodes' commits; polling until listening again", metadata: ["error": "\(failure)"])
                }
                try? await Task.sleep(for: pause)
                pause = min(pause * 2, .seconds(2))
            }
        }
    }

    /// One listening connection, from connecting to its failure (or cancellation).
    private func listenOnce(attempt: Int) async throws {
        let settings = try listenerSettings()
        let connection = try await withDeadline(
            configuration.timeout,
            "connecting the listener to PostgreSQL",
            discard: { try? await $0.close() }
        ) { [logger] in
            try await PostgresConnection.connect(configuration: settings, id: attempt, logger: logger)
        }
        defer { Task { [connection] in try? await connection.close() } }
        try await connection.listen(on: Self.listenerChannel) { notifications in
            // From here on every commit is notified; what committed before is read now.
            try await catchUp()
            let wasDown: Bool
            if case .down = listener.following { wasDown = true } else { wasDown = false }
            listener.up()
            if wasDown, attempt > 1 {
                logger.notice("hearing other nodes' commits again", metadata: ["log.head": "\(commits.head)"])
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { [self] in
                    for try await notification in notifications {
                        await heard(notification.payload)
                    }
                }
                group.addTask { [configuration, logger] in
                    while true {
                        try await Task.sleep(for: Self.listenerPing)
                        try await withDeadline(configuration.timeout, "checking the listening connection") {
                            _ = try await connection.query("SELECT 1", logger: logger)
                        }
                    }
                }
                // Either ending is the connection's end (or shutdown): stop the other and reconnect.
                try await group.next()
                group.cancelAll()
            }
        }
    }

    /// Another node's commit: catches up unless this process has already seen that head, and measures how long the
    /// commit took to reach this node.
    ///
    /// This log's own notifications are not news: its commit path announces each commit as soon as `COMMIT`
    /// returned, with the events in hand. The notification often arrives first (PostgreSQL sends it at commit,
    /// before the answer to `COMMIT` is read), and catching up then would read the page of events the commit path
    /// is about to hand over anyway: a read per commit, on another connection, for nothing. Should a commit's answer
    /// be lost after PostgreSQL committed it, the head poll finds the commit.
    private func heard(_ payload: String) async {
        guard let (head, time, sender) = CommitListener.parse(payload), sender != listener.sender, head > commits.head
        else { return }
        do {
            try await catchUp()
        } catch {
            return
        }
        let lag = Timestamp.now().microseconds - time
        listener.lag.recordNanoseconds(max(0, lag) * 1000)
    }

    static var listenerChannel: String { CommitListener.channel }

    /// The pool's settings for one connection of its own, named `rewind-listener` in `pg_stat_activity`.
    private func listenerSettings() throws -> PostgresConnection.Configuration {
        var settings = try Self.connectionSettings(configuration)
        settings.options.additionalStartupParameters = Self.sessionSettings(configuration).map { name, value in
            name == "application_name" ? (name, "rewind-listener") : (name, value)
        }
        return settings
    }

    // MARK: - One node at a time

    /// Runs `body` while holding PostgreSQL's session advisory lock for `name` on a connection set aside for it;
    /// nil without running it when another session (another node) holds that lock. The lock goes with the
    /// connection, so a node that dies mid-way frees it for the next.
    public func exclusively<T: Sendable>(_ name: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T? {
        let key = Self.lockKey(name)
        do {
            return try await client.withConnection { [logger] connection in
                let locked = try await Self.single(connection.query("SELECT pg_try_advisory_lock(\(key))", logger: logger), Bool.self)
                guard locked else { return nil }
                do {
                    let value = try await body()
                    _ = try? await connection.query("SELECT pg_advisory_unlock(\(key))", logger: logger)
                    return value
                } catch {
                    _ = try? await connection.query("SELECT pg_advisory_unlock(\(key))", logger: logger)
                    throw error
                }
            }
        } catch {
            throw PostgresFailures.map(error, configuration)
        }
    }

    /// A lock key of Rewind's own for `name`: the migrations' key space (`Migration.lockKey`) with a stable hash
    /// of the name in its low bits, so other applications' advisory locks on the same database do not collide.
    static func lockKey(_ name: String) -> Int64 {
        var hash: UInt32 = 2_166_136_261
        for byte in name.utf8 {
            hash = (hash ^ UInt32(byte)) &* 16_777_619
        }
        return (Migration.lockKey & ~0xFFFF_FFFF) | Int64(hash)
    }
}
