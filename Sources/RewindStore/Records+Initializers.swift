public import RewindCore

// Public constructors of the record types, for store backends in other modules (RewindPostgres) that build the
// same results `EventLog` does. The memberwise initializers are internal; `make` takes the same arguments.

extension AppendResult {
    public static func make(stream: String, firstID: Int64, lastID: Int64, time: Timestamp, replayed: Bool) -> Self {
        Self(stream: stream, firstID: firstID, lastID: lastID, time: time, replayed: replayed)
    }
}

extension ReadPage {
    public static func make(events: [Event], scannedThrough: Int64, head: Int64) -> Self {
        Self(events: events, scannedThrough: scannedThrough, head: head)
    }
}

extension RawEvent {
    public static func make(id: Int64, type: UnsafeBufferPointer<UInt8>, data: UnsafeBufferPointer<UInt8>) -> Self {
        Self(id: id, type: type, data: data)
    }
}

extension PageSummary {
    public static func make(count: Int, firstID: Int64?, scannedThrough: Int64, head: Int64, prunedThrough: Int64) -> Self {
        Self(count: count, firstID: firstID, scannedThrough: scannedThrough, head: head, prunedThrough: prunedThrough)
    }
}

extension StreamInfo {
    public static func make(name: String, count: Int64, firstID: Int64, lastID: Int64, lastTime: Timestamp, bytes: Int64) -> Self {
        Self(name: name, count: count, firstID: firstID, lastID: lastID, lastTime: lastTime, bytes: bytes)
    }
}
