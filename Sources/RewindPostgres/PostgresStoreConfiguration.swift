internal import Foundation

/// A configuration that cannot work, found before or while connecting: a malformed URL, a wrong password, a
/// missing database, a role that may not create the tables. One line naming the problem, never the password.
public struct PostgresConfigurationError: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// A password kept out of every description, debug description and reflection of the values holding it, so
/// no log line, error or `dump` can show it.
struct Secret: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    let value: String
    var description: String { "********" }
    var debugDescription: String { "********" }
    var customMirror: Mirror { Mirror(self, children: []) }
}

/// Settings of the PostgreSQL log, read from a `postgres://` or `postgresql://` URL:
///
///     postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE[?sslmode=MODE&passfile=PATH&connect_timeout=SECONDS]
///
/// as libpq reads it. The password comes from the URL, else `PGPASSWORD`, else the file named by `passfile` or
/// `PGPASSFILE` (libpq's `.pgpass` lines `host:port:database:user:password`, `*` matching anything; a file of one
/// line without a colon is the password itself). `sslmode` is `disable`, `allow`/`prefer` (TLS when the server
/// offers it, the default), `require` (TLS or nothing, certificate not checked, as libpq does without a root
/// certificate), `verify-ca` or `verify-full` (certificate checked against the system's roots; `verify-full`
/// also checks the host name).
public struct PostgresStoreConfiguration: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// How the connection is encrypted (libpq's `sslmode`).
    public enum SSLMode: String, Sendable, CaseIterable {
        case disable
        case allow
        case prefer
        case require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var sslMode: SSLMode
    var password: Secret?
    /// How long an `Idempotency-Key` is remembered per stream.
    public var idempotencyWindow: Duration
    /// How long any one operation (connecting included) may take before it fails with `StoreError.unavailable`:
    /// an unreachable or stalled server is answered, not waited for.
    public var timeout: Duration
    /// Connections of the pool shared by appends (one at a time) and reads.
    public var maximumConnections: Int

    /// True when a password was found (in the URL, `PGPASSWORD` or a password file).
    public var hasPassword: Bool { password != nil }

    /// Parses a `postgres://` or `postgresql://` URL.
    /// - Parameter environment: where `PGPASSWORD` and `PGPASSFILE` are looked up; the process's own by default.
    public init(
        url text: String,
        environment: [String: String]? = nil,
        idempotencyWindow: Duration = .seconds(24 * 3600),
        maximumConnections: Int = 16
    ) throws(PostgresConfigurationError) {
        let environment = environment ?? ProcessInfo.processInfo.environment
        guard text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") else {
            throw PostgresConfigurationError("the database URL must start with postgres:// or postgresql://")
        }
        guard let components = URLComponents(string: text) else {
            throw PostgresConfigurationError("the database URL is malformed: \(Self.redacted(text))")
        }
        guard let host = components.host, !host.isEmpty else {
            throw PostgresConfigurationError("the database URL names no host: \(Self.redacted(text))")
        }
        // An IPv6 literal keeps its brackets in URLComponents.host.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        guard let user = components.user, !user.isEmpty else {
            throw PostgresConfigurationError("the database URL names no user: write postgres://USER@\(host)/DATABASE")
        }
        self.user = user
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !path.isEmpty, !path.contains("/") else {
            throw PostgresConfigurationError("the database URL names no database: write postgres://\(user)@\(host)/DATABASE")
        }
        self.database = path
        if let port = components.port {
            guard (1...65535).contains(port) else { throw PostgresConfigurationError("the database URL's port \(port) is out of range") }
            self.port = port
        } else {
            self.port = 5432
        }
        var parameters: [String: String] = [:]
        for item in components.queryItems ?? [] {
            parameters[item.name] = item.value ?? ""
        }
        let known: Set<String> = ["sslmode", "passfile", "connect_timeout"]
        if let unknown = parameters.keys.sorted().first(where: { !known.contains($0) }) {
            throw PostgresConfigurationError(
                "the database URL's parameter \(unknown) is not supported (known: \(known.sorted().joined(separator: ", ")))"
            )
        }
        if let mode = parameters["sslmode"] {
            guard let parsed = SSLMode(rawValue: mode) else {
                throw PostgresConfigurationError(
                    "sslmode=\(mode) is not known: use one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            self.sslMode = parsed
        } else {
            self.sslMode = .prefer
        }
        if let seconds = parameters["connect_timeout"] {
            guard let value = Int(seconds), value > 0 else {
                throw PostgresConfigurationError("connect_timeout=\(seconds) is not a positive number of seconds")
            }
            self.timeout = .seconds(value)
        } else {
            self.timeout = .seconds(10)
        }
        if let password = components.password {
            self.password = Secret(value: password)
        } else if let password = environment["PGPASSWORD"] {
            self.password = Secret(value: password)
        } else if let file = parameters["passfile"] ?? environment["PGPASSFILE"] {
            self.password = try Self.password(
                fromFile: file,
                host: self.host,
                port: self.port,
                database: path,
                user: user
            ).map(Secret.init)
        } else {
            self.password = nil
        }
        self.idempotencyWindow = idempotencyWindow
        self.maximumConnections = maximumConnections
    }

    /// True when `text` names a PostgreSQL database rather than a file.
    public static func isURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// The URL without its password.
    public var description: String {
        let hostText = host.contains(":") ? "[\(host)]" : host
        return "postgres://\(user)@\(hostText):\(port)/\(database)?sslmode=\(sslMode.rawValue)"
    }

    public var debugDescription: String { description }

    /// A URL as given, with whatever stands between `user:` and `@` replaced, for error messages.
    static func redacted(_ text: String) -> String {
        guard let scheme = text.range(of: "://"), let at = text[scheme.upperBound...].lastIndex(of: "@") else { return text }
        let credentials = text[scheme.upperBound..<at]
        guard let colon = credentials.firstIndex(of: ":") else { return text }
        return String(text[..<colon]) + ":********" + String(text[at...])
    }

    /// The password for this connection from a password file: the first `.pgpass` line whose fields match (`*`
    /// matches anything), or the whole file when it is one line with no unescaped colon.
    static func password(
        fromFile file: String,
        host: String,
        port: Int,
        database: String,
        user: String
    ) throws(PostgresConfigurationError)
        -> String?
    {
        let text: String
        do {
            text = try String(contentsOfFile: file, encoding: .utf8)
        } catch {
            throw PostgresConfigurationError("cannot read the password file \(file): \((error as NSError).localizedDescription)")
        }
        let lines = text.split(whereSeparator: { $0 == "\n" || $0 == "\r\n" }).map(String.init).filter {
            !$0.isEmpty && !$0.hasPrefix("#")
        }
        func fields(_ line: String) -> [String] {
            var out = [""]
            var escaped = false
            for character in line {
                if escaped {
                    out[out.count - 1].append(character)
                    escaped = false
                } else if character == "\\" {
                    escaped = true
                } else if character == ":" && out.count < 5 {
                    out.append("")
                } else {
                    out[out.count - 1].append(character)
                }
            }
            return out
        }
        if lines.count == 1, fields(lines[0]).count == 1 { return lines[0] }
        for line in lines {
            let parts = fields(line)
            guard parts.count == 5 else { continue }
            let wanted = [host, String(port), database, user]
            if zip(parts.prefix(4), wanted).allSatisfy({ $0 == "*" || $0 == $1 }) { return parts[4] }
        }
        return nil
    }
}
