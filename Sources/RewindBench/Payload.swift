/// A payload the subscribers can check: a sequence number, the send time, and padding up to `size` bytes.
func payload(sequence: UInt64, size: Int) -> String {
    var text = "\(sequence) \(ProcessStats.monotonicNanoseconds())"
    if text.utf8.count < size { text += String(repeating: "x", count: size - text.utf8.count) }
    return text
}
