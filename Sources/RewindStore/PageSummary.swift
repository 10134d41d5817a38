/// What a `scan` looked through; the same bounds a `ReadPage` carries.
public struct PageSummary: Sendable {
    public var count: Int
    public var firstID: Int64?
    public var scannedThrough: Int64
    public var head: Int64
    /// The highest id removed (by retention or deletion) from any stream the query covers; a cursor below it
    /// has missed events.
    public var prunedThrough: Int64

    public init(count: Int, firstID: Int64?, scannedThrough: Int64, head: Int64, prunedThrough: Int64) {
        self.count = count
        self.firstID = firstID
        self.scannedThrough = scannedThrough
        self.head = head
        self.prunedThrough = prunedThrough
    }
}
