internal import Foundation

/// A progress line on stderr for long work: drawn only when stderr is a terminal, or when the work has already run
/// for a while (then as occasional plain lines, so logs of long runs show it moving).
public final class ProgressBar {
    private let label: String
    private let isTerminal: Bool
    private let started = ContinuousClock.now
    private var lastDrawn = ContinuousClock.now
    private var drew = false
    private let write: (String) -> Void

    /// - Parameter write: where the text goes; stderr when nil.
    public init(label: String, isTerminal: Bool, write: ((String) -> Void)? = nil) {
        self.label = label
        self.isTerminal = isTerminal
        self.write = write ?? { FileHandle.standardError.write(Data($0.utf8)) }
    }

    /// Reports `done` of `total`; cheap enough to call often.
    public func update(_ done: Int64, of total: Int64) {
        let now = ContinuousClock.now
        if isTerminal {
            guard now - lastDrawn >= .milliseconds(100) || done == total else { return }
            let fraction = total > 0 ? min(Double(done) / Double(total), 1) : 1
            let filled = Int(fraction * 30)
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
            write("\r\(label) [\(bar)] \(done)/\(total) (\(Int(fraction * 100))%)")
        } else {
            // Not a terminal: quiet for short runs, a line every 5 s for long ones.
            guard now - started >= .seconds(2), now - lastDrawn >= .seconds(5) else { return }
            write("\(label): \(done)/\(total)\n")
        }
        lastDrawn = now
        drew = true
    }

    /// Ends the terminal line, if one was drawn.
    public func finish() {
        if isTerminal, drew { write("\n") }
    }
}
