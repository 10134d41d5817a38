package import RewindCore

/// The conditions of an `EventQuery` that the server's JSON read API cannot express (`--before`, `--contains`,
/// `--where`), checked on each event as `rewind query --server` pages through the log.
///
/// Each one decides exactly as the SQL that `rewind query --db` runs: `instr(data, ?)` is a byte search, and a
/// `--where` condition follows SQLite's `json_valid`, `json_extract` and `json_type`, including their quirks (a
/// JSON `true` equals 1; text data that happens to be valid JSON is searched too).
package struct ClientSideFilter: Sendable {
    /// Only ids below this.
    package var before: Int64?
    /// `--contains`: these bytes somewhere in the data.
    package var text: [UInt8]?
    package var fields: [Field] = []

    /// One `--where` condition: the steps of its path and the value to compare with.
    package struct Field: Sendable {
        package var steps: [Step]
        package var value: FieldMatch.Value
    }

    package enum Step: Sendable, Equatable {
        case member(String)
        case index(Int)
    }

    package init(_ query: EventQuery) {
        before = query.before
        text = query.text.map { Array($0.utf8) }
        fields = query.fields.map { Field(steps: Self.steps(ofPath: $0.path), value: $0.value) }
    }

    /// True when every event the server sends matches.
    package var isEmpty: Bool { before == nil && text == nil && fields.isEmpty }

    /// Whether `event` (with its data parsed, when it is JSON) meets every condition.
    package func matches(_ event: Event, parsedData: JSONValue?) -> Bool {
        if let before, event.id >= before { return false }
        if let text, !Self.contains(Array(event.data.utf8), text) { return false }
        guard !fields.isEmpty else { return true }
        // `json_valid(data)` holds for text data that is valid JSON as well, so such text is searched too.
        guard let document = parsedData ?? (try? JSONParser.parse(Array(event.data.utf8))) else { return false }
        return fields.allSatisfy { field in
            guard let found = Self.lookup(field.steps, in: document) else { return false }
            return Self.equals(found, field.value)
        }
    }

    /// `instr(haystack, needle) > 0`: a byte search; the empty text is in everything.
    package static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty else { return true }
        guard haystack.count >= needle.count else { return false }
        let first = needle[0]
        var start = 0
        while start <= haystack.count - needle.count {
            if haystack[start] == first, haystack[start..<(start + needle.count)].elementsEqual(needle) { return true }
            start += 1
        }
        return false
    }

    /// The steps of a path `FieldMatch` wrote in SQLite's syntax: `$."user"."id"`, `$."items"[0]`.
    package static func steps(ofPath path: String) -> [Step] {
        var steps: [Step] = []
        var scalars = Substring(path).unicodeScalars.dropFirst()  // "$"
        while let first = scalars.first {
            scalars = scalars.dropFirst()
            if first == "[" {
                let digits = scalars.prefix { $0 != "]" }
                scalars = scalars.dropFirst(digits.count + 1)
                // SQLite refuses an index that is not a number; here it simply finds nothing.
                steps.append(.index(Int(String(digits)) ?? -1))
            } else if first == ".", scalars.first == "\"" {
                scalars = scalars.dropFirst()
                var name = String.UnicodeScalarView()
                while let scalar = scalars.first {
                    scalars = scalars.dropFirst()
                    if scalar == "\\", scalars.first == "\"" {
                        name.append("\"")
                        scalars = scalars.dropFirst()
                    } else if scalar == "\"" {
                        break
                    } else {
                        name.append(scalar)
                    }
                }
                steps.append(.member(String(name)))
            }
        }
        return steps
    }

    /// `json_extract`'s walk: a member by name (the first with that name) in an object, an element by index in an
    /// array; anything else is not found.
    package static func lookup(_ steps: [Step], in document: JSONValue) -> JSONValue? {
        var current = document
        for step in steps {
            switch (step, current) {
            case (.member(let name), .object(let members)):
                guard let member = members.first(where: { $0.name.utf8.elementsEqual(name.utf8) }) else { return nil }
                current = member.value
            case (.index(let index), .array(let elements)):
                guard index >= 0, index < elements.count else { return nil }
                current = elements[index]
            default:
                return nil
            }
        }
        return current
    }

    /// The comparison `rewind query --db` makes in SQL. Numbers: `json_extract(...) = ?`, where `true` and `false`
    /// extract as 1 and 0 and an integer equals a real of the same value; text: `json_type` is `text` and the bytes
    /// are equal (SQLite's BINARY collation); booleans and null: `json_type`.
    package static func equals(_ found: JSONValue, _ wanted: FieldMatch.Value) -> Bool {
        switch wanted {
        case .integer(let value):
            switch SQLNumber(found) {
            case .integer(let number): return number == value
            case .real(let number): return SQLNumber.equal(value, number)
            case nil: return false
            }
        case .real(let value):
            switch SQLNumber(found) {
            case .integer(let number): return SQLNumber.equal(number, value)
            case .real(let number): return number == value
            case nil: return false
            }
        case .text(let value):
            if case .string(let text) = found { return text.utf8.elementsEqual(value.utf8) }
            return false
        case .boolean(let value):
            if case .bool(let flag) = found { return flag == value }
            return false
        case .null:
            return found == .null
        }
    }
}

/// What `json_extract` gives SQL for a JSON number or boolean.
private enum SQLNumber {
    case integer(Int64)
    case real(Double)

    init?(_ value: JSONValue) {
        switch value {
        case .bool(let flag):
            self = .integer(flag ? 1 : 0)
        case .number(let literal):
            if !literal.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let integer = Int64(literal) {
                self = .integer(integer)
            } else if let real = Double(literal) {
                // Integers too long for 64 bits become reals, as in SQLite.
                self = .real(real)
            } else {
                return nil
            }
        default:
            return nil
        }
    }

    /// SQLite compares an integer with a real exactly, not through a rounding conversion.
    package static func equal(_ integer: Int64, _ real: Double) -> Bool {
        guard real.isFinite, real.rounded(.towardZero) == real, real >= -0x1p63, real < 0x1p63 else { return false }
        return Int64(real) == integer
    }
}
