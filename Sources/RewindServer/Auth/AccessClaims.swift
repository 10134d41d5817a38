public import JWTKit

#if canImport(FoundationEssentials)
    public import FoundationEssentials
#else
    public import Foundation
#endif

/// The claims of a Rewind token (SPEC §3): the standard `exp`, `nbf` and `sub`, and `rewind`, what the bearer may do.
///
/// ```json
/// {"sub": "billing", "exp": 1795000000, "rewind": {"publish": ["orders.*"], "subscribe": ["orders", "audit.*"], "admin": false}}
/// ```
public struct AccessClaims: JWTPayload, Equatable {
    /// What the bearer may do; patterns are stream names or trailing-`*` patterns, as in subscriptions.
    public struct Scopes: Codable, Sendable, Equatable {
        public var publish: [String]?
        public var subscribe: [String]?
        /// Admin may do everything, including deleting streams.
        public var admin: Bool?

        public init(publish: [String]? = nil, subscribe: [String]? = nil, admin: Bool? = nil) {
            self.publish = publish
            self.subscribe = subscribe
            self.admin = admin
        }
    }

    public var exp: ExpirationClaim?
    public var nbf: NotBeforeClaim?
    public var iat: IssuedAtClaim?
    public var sub: SubjectClaim?
    public var rewind: Scopes?

    public init(subject: String? = nil, expires: Date? = nil, issued: Date? = nil, scopes: Scopes) {
        self.sub = subject.map(SubjectClaim.init(value:))
        self.exp = expires.map(ExpirationClaim.init(value:))
        self.iat = issued.map(IssuedAtClaim.init(value:))
        self.rewind = scopes
    }

    /// Signature checks come first (jwt-kit); this adds the time claims, so an expired token is refused everywhere.
    public func verify(using algorithm: some JWTAlgorithm) async throws {
        try exp?.verifyNotExpired()
        try nbf?.verifyNotBefore()
    }
}
