public import Logging
import RewindCore
import RewindStore
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Log lines on stderr, one `write` each, as text (`--log-format text`, swift-log's `StreamLogHandler` layout:
/// `2026-12-01T10:20:33+0000 info rewind: key=value … [source] message`) or as JSON objects (`--log-format json`:
/// `time`, `level`, `message`, `source`, `label` and the metadata, keys sorted).
///
/// Every request writes one line, so the line is built straight into bytes: merging metadata dictionaries,
/// interpolating strings and serializing through Foundation cost more than the request itself (with
/// `StreamLogHandler` a third of a small publish's CPU, with `JSONSerialization` two thirds).
public struct LogLineHandler: LogHandler {
    public enum Format: Sendable {
        case text, json
    }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:] {
        didSet { sortedMetadata = metadata.sorted { $0.key < $1.key } }
    }
    public var metadataProvider: Logger.MetadataProvider?
    private var sortedMetadata: [(key: String, value: Logger.MetadataValue)] = []
    private let label: String
    private let format: Format

    public init(label: String, format: Format, metadataProvider: Logger.MetadataProvider?) {
        self.label = label
        self.format = format
        self.metadataProvider = metadataProvider
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = sortedMetadata
        if let provided = metadataProvider?.get(), !provided.isEmpty { Self.merge(provided, into: &fields) }
        if let extra = event.metadata, !extra.isEmpty { Self.merge(extra, into: &fields) }
        var line: [UInt8]
        switch format {
        case .text: line = text(event, fields)
        case .json: line = json(event, fields)
        }
        line.append(UInt8(ascii: "\n"))
        line.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(2, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0, errno == EINTR {
                    continue
                } else {
                    return
                }
            }
        }
    }

    /// Sets each of `extra`'s keys in `fields`, kept sorted by key; a later value replaces an earlier one.
    private static func merge(_ extra: Logger.Metadata, into fields: inout [(key: String, value: Logger.MetadataValue)]) {
        for (key, value) in extra {
            var low = 0
            var high = fields.count
            while low < high {
                let middle = (low + high) / 2
                if fields[middle].key < key { low = middle + 1 } else { high = middle }
            }
            if low < fields.count, fields[low].key == key {
                fields[low].value = value
            } else {
                fields.insert((key, value), at: low)
            }
        }
    }

    private func text(_ event: LogEvent, _ fields: [(key: String, value: Logger.MetadataValue)]) -> [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(256)
        line.append(contentsOf: LocalTime.current().utf8)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: event.level.rawValue.utf8)
        line.append(UInt8(ascii: " "))
        line.append(contentsOf: label.utf8)
        line.append(UInt8(ascii: ":"))
        for (key, value) in fields {
            line.append(UInt8(ascii: " "))
            line.append(contentsOf: key.utf8)
            line.append(UInt8(ascii: "="))
            line.append(contentsOf: value.description.utf8)
        }
        line.append(contentsOf: " [".utf8)
        line.append(contentsOf: event.source.utf8)
        line.append(contentsOf: "] ".utf8)
        line.append(contentsOf: event.message.description.utf8)
        return line
    }

    private func json(_ event: LogEvent, _ fields: [(key: String, value: Logger.MetadataValue)]) -> [UInt8] {
        var own: [(key: String, value: Logger.MetadataValue)] = [
            ("label", .string(label)),
            ("level", .string(event.level.rawValue)),
            ("message", .string(event.message.description)),
            ("source", .string(event.source)),
            ("time", .string(Timestamp.now().description)),
        ]
        // The line's own keys win over metadata of the same name.
        for field in fields where !own.contains(where: { $0.key == field.key }) { own.append(field) }
        own.sort { $0.key < $1.key }
        var json = JSONWriter(capacity: 256)
        json.beginObject()
        for (key, value) in own {
            json.key(key)
            Self.append(value, to: &json)
        }
        json.endObject()
        return json.bytes
    }

    private static func append(_ value: Logger.MetadataValue, to json: inout JSONWriter) {
        switch value {
        case .string(let text): json.string(text)
        case .stringConvertible(let convertible): json.string(convertible.description)
        case .array(let values):
            json.beginArray()
            for value in values { append(value, to: &json) }
            json.endArray()
        case .dictionary(let values):
            json.beginObject()
            for (key, value) in values.sorted(by: { $0.key < $1.key }) {
                json.key(key)
                append(value, to: &json)
            }
            json.endObject()
        }
    }
}

/// The local time to the second as `StreamLogHandler` writes it (`%Y-%m-%dT%H:%M:%S%z`), formatted once a second.
private enum LocalTime {
    private struct Cached {
        var second = -1
        var text = ""
    }

    private static let cache = Mutex(Cached())

    static func current() -> String {
        var now = time(nil)
        return cache.withLock { cached in
            if cached.second == now { return cached.text }
            var parts = tm()
            localtime_r(&now, &parts)
            var buffer = [Int8](repeating: 0, count: 64)
            let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
            cached.text = String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            cached.second = now
            return cached.text
        }
    }
}
