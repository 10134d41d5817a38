import JWTKit

/// The key `rewind token` signs with: the server's shared secret (HS256), or the private half of its public key
/// (RS256 or ES256, read from the PEM).
public enum SigningKey: Sendable {
    case secret(String)
    case privateKey(pem: String)
}

/// Signs Rewind tokens, for `rewind token` and the tests.
public enum TokenMinter {
    public static func sign(_ claims: AccessClaims, with key: SigningKey) async throws -> String {
        let keys = JWTKeyCollection()
        switch key {
        case .secret(let secret):
            try AuthConfigurationError.check(secret: secret)
            await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
        case .privateKey(let pem):
            if let rsa = try? Insecure.RSA.PrivateKey(pem: pem) {
                await keys.add(rsa: rsa, digestAlgorithm: .sha256)
            } else if let ecdsa = try? ES256PrivateKey(pem: pem) {
                await keys.add(ecdsa: ecdsa)
            } else {
                throw AuthConfigurationError("the private key is neither an RSA nor a P-256 (ES256) private key in PEM")
            }
        }
        return try await keys.sign(claims)
    }
}
