/// `rewind bench fanout`: S SSE subscribers on one stream while one publisher sends R events a second for T;
/// every subscriber checks it got every event once, in order.
public struct FanoutOptions: Sendable {
    /// Publisher i sends to `publish[i % publish.count]`, subscriber i reads from `subscribe[i % subscribe.count]`:
    /// several templates spread both over the nodes of a cluster. Neither may be empty.
    public var publish: [URLTemplate]
    public var subscribe: [URLTemplate]
    public var subscribers: Int
    public var rate: Int
    public var duration: Duration
    public var eventSize: Int
    public var stream: String
    /// The server's process id, to report its resident memory and the CPU it spends per delivery (`/proc/PID/stat`:
    /// give the process that does the work, e.g. nginx's worker, not its master).
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
        publish: [URLTemplate],
        subscribe: [URLTemplate],
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
