import HTTPTypes

/// Why a request was refused by auth; answered as problem+json with `WWW-Authenticate` (RFC 6750).
public enum AuthError: Error, Equatable, CustomStringConvertible {
    /// No token in any of the places a token may be: 401.
    case missingToken
    /// A token that does not verify, is expired, or is malformed: 401. `source` names where the token was found:
    /// the `Authorization` header, the `rewind_token` cookie or the `access_token` query parameter.
    case invalidToken(String, source: String = "Authorization")
    /// A valid token without the scope the request needs: 403.
    case insufficientScope(String, String)

    public var description: String {
        switch self {
        case .missingToken:
            "a token is required: send Authorization: Bearer <token>, the rewind_token cookie or the access_token query parameter"
        case .invalidToken(let reason, let source): "invalid token in \(source): \(reason)"
        case .insufficientScope(_, let reason): reason
        }
    }

    var problem: Problem {
        switch self {
        case .missingToken:
            Problem(.unauthorized, description, field: "Authorization", headers: [.wwwAuthenticate: #"Bearer realm="rewind""#])
        case .invalidToken(let reason, let source):
            Problem(
                .unauthorized,
                description,
                field: source,
                headers: [.wwwAuthenticate: #"Bearer realm="rewind", error="invalid_token", error_description="\#(Self.quotable(reason))""#]
            )
        case .insufficientScope(let scope, _):
            Problem(
                .forbidden,
                description,
                headers: [.wwwAuthenticate: #"Bearer realm="rewind", error="insufficient_scope", scope="\#(scope)""#]
            )
        }
    }

    /// RFC 6750 error descriptions are a restricted ASCII set without quotes or backslashes.
    private static func quotable(_ text: String) -> String {
        String(String.UnicodeScalarView(text.unicodeScalars.filter { $0.value >= 0x20 && $0.value <= 0x7E && $0 != "\"" && $0 != "\\" }))
    }
}

extension HTTPField.Name {
    static let wwwAuthenticate = Self("WWW-Authenticate")!
}
