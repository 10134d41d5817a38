/// `rewind bench idle`: N SSE connections held open without traffic; what each costs the server.
public struct IdleOptions: Sendable {
    /// Connection i reads from `subscribe[i % subscribe.count]`. Not empty.
    public var subscribe: [URLTemplate]
    public var connections: Int
    public var stream: String
    public var serverPID: Int32
    public var hold: Duration

    public init(subscribe: [URLTemplate], connections: Int, stream: String, serverPID: Int32, hold: Duration = .seconds(2)) {
        self.subscribe = subscribe
        self.connections = connections
        self.stream = stream
        self.serverPID = serverPID
        self.hold = hold
    }
}
