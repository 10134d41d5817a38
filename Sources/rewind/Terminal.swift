import ArgumentParser
import Foundation
import RewindAdmin
import RewindCore
import RewindPostgres
import RewindStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

enum Terminal {
    static var standardOutput: Bool { isatty(STDOUT_FILENO) == 1 }
    static var standardError: Bool { isatty(STDERR_FILENO) == 1 }

    /// The terminal's width in columns, or nil when stdout is not a terminal.
    static var width: Int? {
        guard standardOutput else { return nil }
        var size = winsize()
        let code = withUnsafeMutablePointer(to: &size) { ioctl(STDOUT_FILENO, UInt(TIOCGWINSZ), $0) }
        if code == 0, size.ws_col > 0 { return Int(size.ws_col) }
        return Int(ProcessInfo.processInfo.environment["COLUMNS"] ?? "") ?? 80
    }

    static func print(_ text: String) {
        FileHandle.standardOutput.write(Data(text.utf8))
    }

    static func printError(_ text: String) {
        FileHandle.standardError.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
    }
}
