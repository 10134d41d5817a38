import HTTPTypes
import Hummingbird
import NIOCore

/// One file of the web console, embedded into the binary at build time from `console/` (the `EmbedConsole`
/// plugin writes `ConsoleAsset.embedded`).
struct ConsoleAsset: Sendable {
    /// The path under `console/`, e.g. `app.js`.
    let path: String
    let contentType: String
    /// A hash of the bytes, quoted: the same for every server built from the same file.
    let etag: String
    let body: ByteBuffer

    init(path: String, contentType: String, etag: String, text: StaticString) {
        self.path = path
        self.contentType = contentType
        self.etag = etag
        self.body = text.withUTF8Buffer { ByteBuffer(bytes: $0) }
    }

    init(path: String, contentType: String, etag: String, bytes: [UInt8]) {
        self.path = path
        self.contentType = contentType
        self.etag = etag
        self.body = ByteBuffer(bytes: bytes)
    }

    /// The embedded files by path.
    static let byPath: [String: ConsoleAsset] = Dictionary(embedded.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })

    /// `200` with the file, or `304` when the client's copy is this one.
    ///
    /// `no-cache` makes the browser ask again on every load (a cheap `304` while the binary is the same), so a new
    /// build's console is never mixed with an old build's script. `nosniff`, which keeps the browser to the declared
    /// type, comes with every response (`SecurityHeadersMiddleware`).
    func response(to request: Request) -> Response {
        var headers: HTTPFields = [
            .contentType: contentType,
            .eTag: etag,
            .cacheControl: "no-cache",
        ]
        if contentType.hasPrefix("text/html") {
            // The page loads only its own files and talks only to this server; nobody may frame it.
            headers[.contentSecurityPolicy] =
                "default-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
            headers[.referrerPolicy] = "no-referrer"
        }
        let cached = request.headers[values: .ifNoneMatch].contains { value in
            value.split(separator: ",").contains { tag in
                let tag = tag.drop { $0 == " " }
                return tag == etag || tag == "*"
            }
        }
        if cached {
            headers[.contentType] = nil
            return Response(status: .notModified, headers: headers)
        }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
    }
}

extension HTTPField.Name {
    static let referrerPolicy = Self("Referrer-Policy")!
}
