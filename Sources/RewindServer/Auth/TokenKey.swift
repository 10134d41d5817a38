import JWTKit

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
            try await add(pem, rsa: { try Insecure.RSA.PublicKey(pem: $0) }, ecdsa: { try ES256PublicKey(pem: $0) }, to: keys)
        case .privateKey(let pem):
            try await add(pem, rsa: { try Insecure.RSA.PrivateKey(pem: $0) }, ecdsa: { try ES256PrivateKey(pem: $0) }, to: keys)
        }
        return keys
    }

    /// Adds a PEM key, this key's half: RS256 if it reads as RSA, else ES256 if it reads as P-256.
    private func add(
        _ pem: String,
        rsa: (String) throws -> some RSAKey,
        ecdsa: (String) throws -> some ECDSAKey,
        to keys: JWTKeyCollection
    ) async throws {
        if let key = try? rsa(pem) {
            await keys.add(rsa: key, digestAlgorithm: .sha256)
        } else if let key = try? ecdsa(pem) {
            await keys.add(ecdsa: key)
        } else if case .privateKey = self {
            throw AuthConfigurationError("the private key is neither an RSA nor a P-256 (ES256) private key in PEM")
        } else {
            throw AuthConfigurationError("the JWT public key is neither an RSA nor a P-256 (ES256) public key in PEM")
        }
    }
}
