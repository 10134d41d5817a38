import ArgumentParser
import RewindCore
import RewindServer

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Mint a token (JWT) for the server's key.",
        usage: "rewind token [--secret-file <file> | --private-key <file>] [<options>]",
        discussion: """
            Signs with the same secret the server verifies with (--secret, --secret-file or REWIND_JWT_SECRET), or \
            with the private half of its --jwt-public-key (--private-key). Prints the token on stdout.

            Examples:
              rewind token --secret-file /etc/rewind/secret --publish 'orders.*' --subscribe orders --ttl 1h
              rewind token --private-key key.pem --subscribe 'audit.*' --subject auditor --ttl 30d
              rewind token --secret-file /etc/rewind/secret --admin --ttl 15m
            """
    )

    @Option(help: "HS256 secret (prefer --secret-file or REWIND_JWT_SECRET: arguments show in ps).")
    var secret: String?

    @Option(help: "HS256 secret file (a trailing newline is ignored).")
    var secretFile: String?

    @Option(help: "Private key PEM file: RSA (RS256) or P-256 (ES256).")
    var privateKey: String?

    @Option(help: "Stream name or trailing-* pattern the token may publish to (repeatable).")
    var publish: [String] = []

    @Option(help: "Stream name or trailing-* pattern the token may subscribe to and read (repeatable).")
    var subscribe: [String] = []

    @Flag(help: "May do everything, including deleting streams.")
    var admin = false

    @Option(help: "Subject (sub claim): who the token is for; per-subject subscription limits count by it.")
    var subject: String?

    @Option(help: "Lifetime (e.g. 15m, 1h, 30d).")
    var ttl = "1h"

    func validate() throws {
        if [secret, secretFile, privateKey].compactMap({ $0 }).count > 1 {
            throw ValidationError("give one of --secret, --secret-file and --private-key")
        }
        guard DurationText.parse(ttl).map({ $0 > .zero }) == true else {
            throw ValidationError("--ttl '\(ttl)' is not a duration such as 15m, 1h or 30d")
        }
        for (flag, patterns) in [("--publish", publish), ("--subscribe", subscribe)] where !patterns.isEmpty {
            do {
                _ = try EventFilter(patterns: patterns)
            } catch {
                throw ValidationError("\(flag): \(error.detail)")
            }
        }
        guard admin || !publish.isEmpty || !subscribe.isEmpty else {
            throw ValidationError("the token would grant nothing: give --publish, --subscribe or --admin")
        }
    }

    func run() async throws {
        guard
            let key = try readTokenKey(
                pemFile: privateKey,
                pemFlag: "--private-key",
                pem: { .privateKey(pem: $0) },
                secretFile: secretFile,
                secretFileFlag: "--secret-file",
                secret: secret
            )
        else {
            throw ValidationError("no key: give --secret-file, --secret or --private-key, or set REWIND_JWT_SECRET")
        }
        let lifetime = DurationText.parse(ttl)!.components
        let now = Date()
        let claims = AccessClaims(
            subject: subject,
            expires: now.addingTimeInterval(Double(lifetime.seconds) + Double(lifetime.attoseconds) / 1e18),
            issued: now,
            scopes: .init(publish: publish.isEmpty ? nil : publish, subscribe: subscribe.isEmpty ? nil : subscribe, admin: admin ? true : nil)
        )
        print(try await TokenMinter.sign(claims, with: key))
    }
}
