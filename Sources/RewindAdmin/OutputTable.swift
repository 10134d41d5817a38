internal import Foundation
public import RewindCore

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
    /// Aligned columns cut to the terminal's width; control characters shown as `\n`, `\r`, `\t`.
    case table
    /// One JSON array of objects; null cells are left out of their object.
    case json
    /// One JSON object per line.
    case ndjson
    /// RFC 4180: a header line, fields quoted when they hold a comma, a quote or a line break, CRLF line ends.
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

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" || $0 == "\r\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// Control characters as visible escapes, so one event stays on one line.
    static func visible(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F: out += "\\u{\(String(scalar.value, radix: 16))}"
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
        for row in body {
            for (index, cell) in row.enumerated() where index < widths.count { widths[index] = max(widths[index], cell.count) }
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
            while out.last == " " { out.removeLast() }
            if let width, out.count > width {
                out = String(out.prefix(max(width - 1, 0))) + "…"
            }
            return out + "\n"
        }
        return ([header] + body).map(line).joined()
    }
}
