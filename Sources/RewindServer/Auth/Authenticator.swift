import HTTPTypes
public import Hummingbird
import JWTKit

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// The key tokens are verified with (`--jwt-secret`, `--jwt-secret-file`, `REWIND_JWT_SECRET`, `--jwt-public-key`)
/// or signed with (`rewind token`).
public enum TokenKey: Sendable {
    /// HS256 with a shared secret.
    case secret(String)
    /// RS256 or ES256 (P-256) with a public key in PEM, which only verifies; which algorithm is read from the key.
    case publicKey(pem: String)
    /// The private half, which signs (and verifies).
    case privateKey(pem: String)

    /// The key in a jwt-kit collection, as its one default key.
    func collection() async throws -> JWTKeyCollection {
        let keys = JWTKeyCollection()
        switch self {
        case .secret(let secret):
            try AuthConfigurationError.check(secret: secret)
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        case .publicKey(let pem):
            if let rsa = try? Insecure.RSA.PublicKey(pem: pem) {
                await keys.add(rsa: rsa, digestAlgorithm: .sha256)
            } else if let ecdsa = try? ES256PublicKey(pem: pem) {
                await keys.add(ecdsa: ecdsa)
            } else {
                throw AuthConfigurationError("the JWT public key is neither an RSA nor a P-256 (ES256) public key in PEM")
            }
        case .privateKey(let pem):
            if let rsa = try? Insecure.RSA.PrivateKey(pem: pem) {
                await keys.add(rsa: rsa, digestAlgorithm: .sha256)
            } else if let ecdsa = try? ES256PrivateKey(pem: pem) {
                await keys.add(ecdsa: ecdsa)
            } else {
                throw AuthConfigurationError("the private key is neither an RSA nor a P-256 (ES256) private key in PEM")
            }
        }
        return keys
    }
}

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

/// Finds a request's token and verifies it: `Authorization: Bearer`, then the `rewind_token` cookie, then the
/// `access_token` query parameter (EventSource cannot set headers); the first present wins, so a bad header is
/// never rescued by a cookie.
public struct Authenticator: Sendable {
    private let keys: JWTKeyCollection?

    /// No key: auth is off and every request may do everything.
    public static let off = Authenticator(keys: nil)

    private init(keys: JWTKeyCollection?) {
        self.keys = keys
    }

    public init(key: TokenKey) async throws {
        self.init(keys: try await key.collection())
    }

    /// What this request may do; throws `AuthError` for a missing or invalid token.
    public func access(for request: Request) async throws(AuthError) -> Access {
        guard let keys else { return .unrestricted }
        let (token, source) = try Self.token(in: request)
        let claims: AccessClaims
        do {
            claims = try await keys.verify(token, as: AccessClaims.self)
        } catch let error as JWTError {
            throw AuthError.invalidToken(Self.reason(error), source: source)
        } catch {
            throw AuthError.invalidToken("it could not be read", source: source)
        }
        do {
            // Without a `sub`, the signature stands for the token: per-subject limits then count per token.
            return try Access(claims: claims, subjectFallback: "token:" + (token.split(separator: ".").last ?? Substring(token)).suffix(16))
        } catch .invalidToken(let reason, _) {
            throw AuthError.invalidToken(reason, source: source)
        }
    }

    /// The request's token and where it was found (the name a problem gives as its `field`).
    static func token(in request: Request) throws(AuthError) -> (token: String, source: String) {
        if let authorization = request.headers[.authorization] {
            let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
            guard parts.count == 2, parts[0].lowercased() == "bearer" else {
                throw AuthError.invalidToken("the header must be 'Bearer <token>'")
            }
            return (String(parts[1].trimmingSpaces), "Authorization")
        }
        for cookies in request.headers[values: .cookie] {
            for cookie in cookies.split(separator: ";") {
                let pair = cookie.split(separator: "=", maxSplits: 1)
                if pair.count == 2, pair[0].trimmingSpaces == "rewind_token" {
                    return (String(pair[1].trimmingSpaces), "rewind_token")
                }
            }
        }
        if let token = request.uri.queryParameters.get("access_token") {
            return (token, "access_token")
        }
        throw AuthError.missingToken
    }

    /// A reason a person can act on, without echoing any part of the token.
    private static func reason(_ error: JWTError) -> String {
        switch error.errorType {
        case .claimVerificationFailure:
            if error.failedClaim is ExpirationClaim { return "it has expired" }
            if error.failedClaim is NotBeforeClaim { return "it is not valid yet (nbf)" }
            return "a claim failed verification"
        case .signatureVerificationFailed: return "the signature does not match the configured key"
        case .malformedToken: return "it is not a well-formed JWT"
        default: return "it could not be verified (\(error.errorType))"
        }
    }
}

/// A key that cannot be used; `rewind serve` refuses to start with it.
public struct AuthConfigurationError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }

    /// HS256 keys shorter than the hash are weak (and jwt-kit refuses them).
    static func check(secret: String) throws(AuthConfigurationError) {
        guard secret.utf8.count >= 32 else {
            throw AuthConfigurationError(
                "the JWT secret has \(secret.utf8.count) bytes; HS256 needs at least 32 (make one with: head -c 32 /dev/urandom | base64)"
            )
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        let start = firstIndex { $0 != " " && $0 != "\t" } ?? endIndex
        let end = lastIndex { $0 != " " && $0 != "\t" }.map(index(after:)) ?? start
        return self[start..<end]
    }
}

extension HTTPField.Name {
    static let wwwAuthenticate = Self("WWW-Authenticate")!
}
