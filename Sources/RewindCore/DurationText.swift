/// Durations as operators write them: `90s`, `15m`, `12h`, `7d`, `500ms`; a bare number is seconds.
public enum DurationText {
    public static func parse(_ text: String) -> Duration? {
        let units: [(suffix: String, milliseconds: Int64)] = [
            ("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000), ("d", 86_400_000), ("w", 604_800_000),
        ]
        for unit in units where text.hasSuffix(unit.suffix) {
            let number = text.dropLast(unit.suffix.count)
            // "ms" also ends in "s": only take the unit whose number part parses.
            if let value = Double(number), value >= 0, value.isFinite {
                return .milliseconds(Int64((value * Double(unit.milliseconds)).rounded()))
            }
        }
        if let seconds = Double(text), seconds >= 0, seconds.isFinite { return .milliseconds(Int64((seconds * 1000).rounded())) }
        return nil
    }
}
