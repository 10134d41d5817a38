import HTTPTypes
public import Hummingbird
import JWTKit

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Finds a request's token and verifies it: `Authorization: Bearer`, then the `rewind_token` cookie, then the
/// `access_token` query parameter (EventSource cannot set headers); the first present wins, so a bad header is
/// never rescued by a cookie. `AuthMiddleware` asks it once per request, before the `/v1` handlers run.
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
        // Hummingbird's cookie parsing; a cookie with an empty value counts as absent.
        if let cookie = request.cookies["rewind_token"] {
            return (String(cookie.value[...].trimmingSpaces), "rewind_token")
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

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        let start = firstIndex { $0 != " " && $0 != "\t" } ?? endIndex
        let end = lastIndex { $0 != " " && $0 != "\t" }.map(index(after:)) ?? start
        return self[start..<end]
    }
}
