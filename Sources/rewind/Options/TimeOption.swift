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

/// A time option: RFC 3339, or a duration before now such as `2h`, `30m`, `7d`.
func parseTime(_ text: String, option: String) throws -> Timestamp {
    if let time = Timestamp(rfc3339: text) { return time }
    if let ago = DurationText.parse(text) {
        let (seconds, attoseconds) = ago.components
        return Timestamp(microseconds: Timestamp.now().microseconds - seconds * 1_000_000 - attoseconds / 1_000_000_000_000)
    }
    throw ValidationError("\(option) '\(text)' is neither an RFC 3339 time nor a duration such as 2h")
}
