import ArgumentParser

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
