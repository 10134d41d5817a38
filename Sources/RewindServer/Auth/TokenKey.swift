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
