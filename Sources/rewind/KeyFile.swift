import ArgumentParser
import RewindServer

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Reads a secret or key file named by `flag`, with an error that names the flag and the file.
func readKeyFile(_ path: String, flag: String) throws -> String {
    guard let data = FileManager.default.contents(atPath: path) else {
        throw ValidationError("\(flag) \(path): cannot read the file")
    }
    guard let text = String(data: data, encoding: .utf8), !text.isEmpty else {
        throw ValidationError("\(flag) \(path): the file is empty or not text")
    }
    return text
}

/// Reads a shared secret: the file's text without its trailing line break.
func readSecretFile(_ path: String, flag: String) throws -> String {
    var secret = try readKeyFile(path, flag: flag)
    while let last = secret.last, last.isNewline { secret.removeLast() }
    guard !secret.isEmpty else { throw ValidationError("\(flag) \(path): the file holds no secret") }
    return secret
}

/// The token key the flags name, first match wins: a PEM key file (made into a key by `pem`), a secret file, a
/// secret given as an argument, then `REWIND_JWT_SECRET`; nil when none is given. `serve` and `token` read their
/// keys alike, only the PEM's half differs.
func readTokenKey(
    pemFile: String?,
    pemFlag: String,
    pem: (String) -> TokenKey,
    secretFile: String?,
    secretFileFlag: String,
    secret: String?
) throws -> TokenKey? {
    if let pemFile { return pem(try readKeyFile(pemFile, flag: pemFlag)) }
    if let secretFile { return .secret(try readSecretFile(secretFile, flag: secretFileFlag)) }
    guard let secret = secret ?? ProcessInfo.processInfo.environment["REWIND_JWT_SECRET"] else { return nil }
    guard !secret.isEmpty else { throw ValidationError("the JWT secret is empty") }
    return .secret(secret)
}
