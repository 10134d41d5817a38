/// What a subscriber reports: the events it parsed (`seq` and send time from the payload) and its connection.
protocol SubscriberSink: AnyObject {
    func connected(status: Int)
    func received(sequence: UInt64, sentNanoseconds: UInt64)
    func bytes(_ count: Int)
    func disconnected()
}
