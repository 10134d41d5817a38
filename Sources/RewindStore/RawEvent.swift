/// An event as a `scan` hands it over: its type and data as the database holds them, valid only during the visit.
public struct RawEvent {
    public let id: Int64
    public let type: UnsafeBufferPointer<UInt8>
    public let data: UnsafeBufferPointer<UInt8>

    public init(id: Int64, type: UnsafeBufferPointer<UInt8>, data: UnsafeBufferPointer<UInt8>) {
        self.id = id
        self.type = type
        self.data = data
    }
}
