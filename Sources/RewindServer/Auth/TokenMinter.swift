import JWTKit

/// Signs Rewind tokens, for `rewind token` and the tests: with the server's shared secret (HS256), or the private
/// half of its public key (RS256 or ES256, read from the PEM).
public enum TokenMinter {
    public static func sign(_ claims: AccessClaims, with key: TokenKey) async throws -> String {
        try await key.collection().sign(claims)
    }
}
