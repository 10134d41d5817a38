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
