public import Hummingbird
import NIOCore
import RewindCore

/// An error answered as `application/problem+json` (RFC 9457): `type`, `title`, `status`, `detail`, and `field`,
/// the parameter, header or member at fault.
public struct Problem: Error, HTTPResponseError, CustomStringConvertible {
    public var status: HTTPResponse.Status
    public var detail: String
    public var field: String?
    public var headers: HTTPFields

    public init(_ status: HTTPResponse.Status, _ detail: String, field: String? = nil, headers: HTTPFields = [:]) {
        self.status = status
        self.detail = detail
        self.field = field
        self.headers = headers
    }

    init(_ error: ValidationError) {
        let status: HTTPResponse.Status =
            switch error.kind {
            case .malformed: .badRequest
            case .tooLarge: .contentTooLarge
            case .unsupportedMediaType: .unsupportedMediaType
            }
        self.init(status, error.detail, field: error.field)
    }

    public var description: String { "\(status.code) \(detail)" }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var json = JSONWriter()
        json.beginObject()
        json.key("type")
        json.string("about:blank")
        json.key("title")
        json.string(status.reasonPhrase)
        json.key("status")
        json.int(status.code)
        json.key("detail")
        json.string(detail)
        if let field {
            json.key("field")
            json.string(field)
        }
        json.endObject()
        var headers = self.headers
        headers[.contentType] = "application/problem+json"
        headers[.cacheControl] = "no-store"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json.bytes)))
    }
}
