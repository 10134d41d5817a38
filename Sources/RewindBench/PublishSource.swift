import NIOCore

/// Where a publisher gets its next request body from, and tells how it went. Called on the event loop only.
protocol PublishSource: AnyObject {
    /// The next body and how many events it holds, or nil if nothing is due now.
    func next() -> (body: ByteBuffer, events: Int)?
    func completed(status: Int, nanoseconds: UInt64, events: Int)
    func disconnected()
}
