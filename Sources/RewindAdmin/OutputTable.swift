internal import Foundation
import RewindCore

/// One value of an output row.
public enum Cell: Sendable, Equatable {
    case integer(Int64)
    case text(String)
    /// JSON text, embedded as a value in JSON output and shown as text elsewhere.
    case json(String)
    case null

    /// The cell as plain text (CSV and tables).
    public var text: String {
        switch self {
        case .integer(let value): return String(value)
        case .text(let value), .json(let value): return value
        case .null: return ""
        }
    }
}

/// How the admin commands print rows: an aligned table for people, JSON, NDJSON or CSV for programs.
public enum OutputFormat: String, Sendable, CaseIterable {
    /// Aligned columns cut to the terminal's width, for people: one line per row, so control characters and line
    /// separators are shown as escapes (`\n`, `\r`, `\t`, `\u{0}`, `\u{85}`, `\u{2028}`) and the text cannot be
    /// told apart from one holding those escapes literally. Everything else, trailing spaces included, is as stored.
    case table
    /// One JSON array of objects; null cells are left out of their object. Text comes back byte for byte.
    case json
    /// One JSON object per line. Text comes back byte for byte.
    case ndjson
    /// RFC 4180: a header line, fields quoted when they hold a comma, a quote or a line break, CRLF line ends.
    /// Fields hold the text byte for byte (NUL and a lone CR too); only a quote is doubled inside quotes.
    case csv

    /// `table` for a terminal, `json` for a pipe or file, the SPEC's default (§4).
    public static func automatic(isTerminal: Bool) -> OutputFormat { isTerminal ? .table : .json }
}

/// Rows with named columns, rendered in any `OutputFormat`.
public struct OutputTable: Sendable, Equatable {
    public var columns: [String]
    public var rows: [[Cell]]

    public init(columns: [String], rows: [[Cell]]) {
        self.columns = columns
        self.rows = rows
    }

    /// The whole output, ending with a line break (an empty `json` table is `[]`).
    /// - Parameter width: the terminal's width in columns; `table` lines are cut to it (nil: not cut).
    public func render(_ format: OutputFormat, width: Int? = nil) -> String {
        switch format {
        case .json:
            var json = JSONWriter()
            json.beginArray()
            for row in rows { write(row, to: &json) }
            json.endArray()
            return String(decoding: json.bytes, as: UTF8.self) + "\n"
        case .ndjson:
            return rows.map(ndjsonLine).joined()
        case .csv:
            var out = columns.map(Self.csvField).joined(separator: ",") + "\r\n"
            for row in rows { out += row.map { Self.csvField($0.text) }.joined(separator: ",") + "\r\n" }
            return out
        case .table:
            return renderTable(width: width)
        }
    }

    /// One row as a JSON object on its own line.
    public func ndjsonLine(_ row: [Cell]) -> String {
        var json = JSONWriter()
        write(row, to: &json)
        return String(decoding: json.bytes, as: UTF8.self) + "\n"
    }

    private func write(_ row: [Cell], to json: inout JSONWriter) {
        json.beginObject()
        for (name, cell) in zip(columns, row) {
            switch cell {
            case .null: continue
            case .integer(let value):
                json.key(name)
                json.int(value)
            case .text(let value):
                json.key(name)
                json.string(value)
            case .json(let value):
                json.key(name)
                json.raw(value)
            }
        }
        json.endObject()
    }

    /// Looks at bytes, not characters: a quote or comma followed by a combining mark is one `Character` that
    /// equals neither, and would be left unquoted.
    static func csvField(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 == UInt8(ascii: ",") || $0 == UInt8(ascii: "\"") || $0 == 0x0A || $0 == 0x0D }) else { return text }
        var out: [UInt8] = [UInt8(ascii: "\"")]
        out.reserveCapacity(text.utf8.count + 2)
        for byte in text.utf8 {
            out.append(byte)
            if byte == UInt8(ascii: "\"") { out.append(byte) }
        }
        out.append(UInt8(ascii: "\""))
        return String(decoding: out, as: UTF8.self)
    }

    /// Control characters (C0, DEL, C1) and the Unicode line and paragraph separators as visible escapes, so one
    /// event stays on one line whatever a terminal takes for a line break.
    static func visible(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0..<0x20, 0x7F..<0xA0, 0x2028, 0x2029: out += "\\u{\(String(scalar.value, radix: 16))}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// Columns padded to their widest cell, two spaces apart, the last one not padded; any line longer than the
    /// width is cut, ending in `…`.
    private func renderTable(width: Int?) -> String {
        // A `data` column goes last, where the cut to the terminal's width falls.
        var order = Array(columns.indices)
        if let data = columns.firstIndex(of: "data") {
            order.remove(at: data)
            order.append(data)
        }
        let header = order.map { columns[$0].uppercased() }
        let body = rows.map { row in order.map { $0 < row.count ? Self.visible(row[$0].text) : "" } }
        var widths = header.map(\.count)
        // The last column is not padded, so its width is never needed (and counting the characters of a
        // megabyte of data is not free).
        for row in body {
            for (index, cell) in row.enumerated() where index < widths.count - 1 { widths[index] = max(widths[index], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var out = ""
            for (index, cell) in cells.enumerated() {
                if index == cells.count - 1 {
                    out += cell
                } else {
                    out += cell + String(repeating: " ", count: widths[index] - cell.count + 2)
                }
            }
            // Only padding is trimmed: an empty last cell leaves the padding of the one before; a cell's own
            // trailing spaces are text.
            if cells.last?.isEmpty ?? true { while out.last == " " { out.removeLast() } }
            if let width, out.count > width {
                out = String(out.prefix(max(width - 1, 0))) + "…"
            }
            return out + "\n"
        }
        return ([header] + body).map(line).joined()
    }
}
