/// Limits a publish request is held to.
public struct PublishLimits: Sendable {
    /// Largest `data` of one event, in UTF-8 bytes.
    public var maxEventBytes: Int
    /// Most events in one request.
    public var maxBatchEvents: Int

    public init(maxEventBytes: Int = 1 << 20, maxBatchEvents: Int = 10_000) {
        self.maxEventBytes = maxEventBytes
        self.maxBatchEvents = maxBatchEvents
    }
}

/// Turns a publish request's body into events, by its `Content-Type` (SPEC §2 "Publish").
///
/// - `application/json`: an object (one event) or an array of objects (a batch);
/// - `application/x-ndjson` (also `application/ndjson`, `application/jsonl`): one object per line, blank lines skipped;
/// - `text/*`: the body is the data of one event, its type from the `type` query parameter.
///
/// An object has `data` (any JSON; a string is stored as its text, anything else as compact JSON text) and an
/// optional `type`. Every error names the event (`events[3].data`, `line 4: type`) and what is wrong with it.
public enum PublishBody {
    public static func parse(
        _ body: [UInt8],
        contentType: String?,
        typeParameter: String?,
        limits: PublishLimits = PublishLimits()
    ) throws(ValidationError) -> [NewEvent] {
        let mediaType = try MediaType.required(contentType, naming: "application/json, application/x-ndjson or text/plain")
        if let charset = mediaType.parameters["charset"], charset != "utf-8", charset != "utf8" {
            throw MediaType.unsupported("Content-Type charset \(quoted(charset)) is not supported: Rewind stores UTF-8 only")
        }
        guard let text = String(validating: body, as: UTF8.self) else {
            throw ValidationError(.unsupportedMediaType, field: "body", "request body is not valid UTF-8")
        }
        let events: [NewEvent]
        switch mediaType.type {
        case "application/json":
            if typeParameter != nil { throw typeParameterMisplaced() }
            events = try parseJSON(body, limits: limits)
        case "application/x-ndjson", "application/ndjson", "application/jsonl", "application/x-jsonlines":
            if typeParameter != nil { throw typeParameterMisplaced() }
            events = try parseNDJSON(body, limits: limits)
        case let type where type.hasPrefix("text/"):
            let eventType = try typeParameter.map { v throws(ValidationError) in try EventType(validating: v, field: "type") } ?? .message
            guard body.count <= limits.maxEventBytes else { throw tooLarge(field: "data", size: body.count, limits: limits) }
            events = [NewEvent(type: eventType, data: text)]
        default:
            throw MediaType.unsupported(
                "Content-Type \(quoted(mediaType.type)) is not supported: use application/json, application/x-ndjson or text/plain"
            )
        }
        guard !events.isEmpty else { throw ValidationError(field: "body", "request body holds no events") }
        guard events.count <= limits.maxBatchEvents else {
            throw ValidationError(
                .tooLarge,
                field: "body",
                "request body holds a batch of \(events.count) events, over the limit of \(limits.maxBatchEvents) events per request"
            )
        }
        return events
    }

    private static func parseJSON(_ body: [UInt8], limits: PublishLimits) throws(ValidationError) -> [NewEvent] {
        let result: Result<[NewEvent], ValidationError> = body.withUnsafeBufferPointer { buffer in
            var scanner = JSONScanner(buffer)
            do {
                scanner.skipWhitespace()
                var events: [NewEvent] = []
                switch scanner.peek() {
                case UInt8(ascii: "{"):
                    events.append(try parseObject(&scanner, label: "", limits: limits))
                case UInt8(ascii: "["):
                    try scanner.expect(UInt8(ascii: "["))
                    scanner.skipWhitespace()
                    if scanner.peek() == UInt8(ascii: "]") {
                        try scanner.expect(UInt8(ascii: "]"))
                    } else {
                        while true {
                            scanner.skipWhitespace()
                            guard scanner.peek() == UInt8(ascii: "{") else {
                                throw ValidationError(field: "events[\(events.count)]", "events[\(events.count)] must be a JSON object")
                            }
                            events.append(try parseObject(&scanner, label: "events[\(events.count)].", limits: limits))
                            if events.count > limits.maxBatchEvents {
                                throw ValidationError(
                                    .tooLarge,
                                    field: "body",
                                    "request body holds more than the limit of \(limits.maxBatchEvents) events per request"
                                )
                            }
                            scanner.skipWhitespace()
                            if scanner.peek() == UInt8(ascii: ",") {
                                try scanner.expect(UInt8(ascii: ","))
                            } else {
                                try scanner.expect(UInt8(ascii: "]"))
                                break
                            }
                        }
                    }
                case nil:
                    throw ValidationError(field: "body", "request body is empty")
                default:
                    throw ValidationError(field: "body", "JSON body must be an object (one event) or an array of objects (a batch)")
                }
                try scanner.expectEnd()
                return .success(events)
            } catch let error as ValidationError {
                return .failure(error)
            } catch let error as JSONScanner.Failure {
                return .failure(ValidationError(field: "body", "request body is not valid JSON at byte \(error.offset): \(error.message)"))
            } catch {
                return .failure(ValidationError(field: "body", "request body is not valid JSON"))
            }
        }
        return try result.get()
    }

    private static func parseNDJSON(_ body: [UInt8], limits: PublishLimits) throws(ValidationError) -> [NewEvent] {
        let result: Result<[NewEvent], ValidationError> = body.withUnsafeBufferPointer { buffer in
            var events: [NewEvent] = []
            var lineStart = 0
            var lineNumber = 0
            while lineStart < buffer.count {
                lineNumber += 1
                var lineEnd = lineStart
                while lineEnd < buffer.count, buffer[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
                defer { lineStart = lineEnd + 1 }
                var scanner = JSONScanner(buffer, from: lineStart, to: lineEnd)
                scanner.skipWhitespace()
                if scanner.isAtEnd { continue }
                do {
                    guard scanner.peek() == UInt8(ascii: "{") else {
                        throw ValidationError(field: "line \(lineNumber)", "line \(lineNumber) must be a JSON object")
                    }
                    events.append(try parseObject(&scanner, label: "line \(lineNumber): ", limits: limits))
                    try scanner.expectEnd()
                } catch let error as ValidationError {
                    return .failure(error)
                } catch let error as JSONScanner.Failure {
                    return .failure(
                        ValidationError(
                            field: "line \(lineNumber)",
                            "invalid JSON on line \(lineNumber) at byte \(error.offset - lineStart + 1): \(error.message)"
                        )
                    )
                } catch {
                    return .failure(ValidationError(field: "line \(lineNumber)", "invalid JSON on line \(lineNumber)"))
                }
                if events.count > limits.maxBatchEvents {
                    return .failure(
                        ValidationError(
                            .tooLarge,
                            field: "body",
                            "request body holds more than the limit of \(limits.maxBatchEvents) events per request"
                        )
                    )
                }
            }
            return .success(events)
        }
        return try result.get()
    }

    /// Reads one event object: `{"type": "...", "data": <any>}`.
    private static func parseObject(_ scanner: inout JSONScanner, label: String, limits: PublishLimits) throws -> NewEvent {
        var type: EventType?
        var data: String?
        var isJSON = false
        try scanner.forEachMember { name, scanner in
            switch name {
            case "type":
                guard type == nil else { throw ValidationError(field: "\(label)type", "\(label)type is given twice") }
                guard scanner.nextIsString() else { throw ValidationError(field: "\(label)type", "\(label)type must be a string") }
                type = try EventType(validating: try scanner.readString(), field: "\(label)type")
            case "data":
                guard data == nil else { throw ValidationError(field: "\(label)data", "\(label)data is given twice") }
                if scanner.nextIsString() {
                    data = try scanner.readString()
                } else {
                    var compact: [UInt8] = []
                    try scanner.readCompactValue(into: &compact)
                    data = String(decoding: compact, as: UTF8.self)
                    isJSON = true
                }
            default:
                throw ValidationError(field: "\(label)\(name)", "unknown field \(quoted(label + name)): an event has 'type' and 'data'")
            }
        }
        guard let data else { throw ValidationError(field: "\(label)data", "\(label)data is required") }
        let size = data.utf8.count
        guard size <= limits.maxEventBytes else { throw tooLarge(field: "\(label)data", size: size, limits: limits) }
        return NewEvent(type: type ?? .message, data: data, isJSON: isJSON)
    }

    private static func tooLarge(field: String, size: Int, limits: PublishLimits) -> ValidationError {
        ValidationError(.tooLarge, field: field, "\(field) is \(size) bytes, over the limit of \(limits.maxEventBytes) bytes per event")
    }

    private static func typeParameterMisplaced() -> ValidationError {
        ValidationError(field: "type", "the 'type' query parameter applies to text bodies only; give JSON events a \"type\" member")
    }
}

/// A parsed `Content-Type`: lowercased `type/subtype` and its parameters (names lowercased, quotes removed).
public struct MediaType: Sendable {
    public var type: String
    public var parameters: [String: String]

    public init(_ header: String) {
        let parts = header.split(separator: ";", omittingEmptySubsequences: false)
        self.type = parts.first.map { $0.trimmingSpaces().lowercased() } ?? ""
        var parameters: [String: String] = [:]
        for part in parts.dropFirst() {
            guard let equals = part.firstIndex(of: "=") else { continue }
            let name = part[..<equals].trimmingSpaces().lowercased()
            var value = part[part.index(after: equals)...].trimmingSpaces()
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") { value = String(value.dropFirst().dropLast()) }
            parameters[name] = name == "charset" ? value.lowercased() : value
        }
        self.parameters = parameters
    }

    /// The media type of a request whose body needs one; a missing or empty header is refused (415) saying what
    /// the endpoint takes (`accepted`).
    public static func required(_ header: String?, naming accepted: String) throws(ValidationError) -> MediaType {
        guard let header, !header.isEmpty else { throw unsupported("Content-Type header is required: \(accepted)") }
        return MediaType(header)
    }

    /// A 415 naming the `Content-Type` header.
    public static func unsupported(_ message: String) -> ValidationError {
        ValidationError(.unsupportedMediaType, field: "Content-Type", message)
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs.
    func trimmingSpaces() -> String {
        func isSpace(_ character: Character) -> Bool { character == " " || character == "\t" }
        guard let first = firstIndex(where: { !isSpace($0) }), let last = lastIndex(where: { !isSpace($0) }) else { return "" }
        return String(self[first...last])
    }
}
