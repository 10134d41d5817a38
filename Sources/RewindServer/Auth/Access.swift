import JWTKit
public import RewindCore

#if canImport(FoundationEssentials)
    public import FoundationEssentials
#else
    public import Foundation
#endif

/// What one request may do: everything when auth is off, otherwise what its verified token grants.
public struct Access: Sendable {
    /// Streams the bearer may publish to, and subscribe to or read; nil grants none.
    public let publish: EventFilter?
    public let subscribe: EventFilter?
    /// May delete streams, and do everything else.
    public let admin: Bool
    /// The token's `sub`, or a stand-in unique to the token when it has none; nil when auth is off.
    public let subject: String?
    /// When the token stops being valid; an open subscription ends then.
    public let expires: Date?

    /// Auth off: a loopback server trusts every caller.
    public static let unrestricted = Access(publish: .everything, subscribe: .everything, admin: true, subject: nil, expires: nil)

    /// Before auth has run: nothing may be done, so a request that was never authenticated is refused.
    static let nothing = Access(publish: nil, subscribe: nil, admin: false, subject: nil, expires: nil)

    public init(publish: EventFilter?, subscribe: EventFilter?, admin: Bool, subject: String?, expires: Date?) {
        self.publish = publish
        self.subscribe = subscribe
        self.admin = admin
        self.subject = subject
        self.expires = expires
    }

    /// The access a token's claims grant; a malformed pattern makes the whole token invalid rather than silently
    /// granting less (or more) than its issuer meant.
    init(claims: AccessClaims, subjectFallback: @autoclosure () -> String) throws(AuthError) {
        func patterns(_ list: [String]?, _ name: String) throws(AuthError) -> EventFilter? {
            guard let list, !list.isEmpty else { return nil }
            do {
                return try EventFilter(patterns: list)
            } catch {
                throw AuthError.invalidToken("claim rewind.\(name) holds an invalid pattern: \(error.detail)")
            }
        }
        let admin = claims.rewind?.admin ?? false
        self.init(
            publish: admin ? .everything : try patterns(claims.rewind?.publish, "publish"),
            subscribe: admin ? .everything : try patterns(claims.rewind?.subscribe, "subscribe"),
            admin: admin,
            subject: claims.sub?.value ?? subjectFallback(),
            expires: claims.exp?.value
        )
    }

    public func mayPublish(to stream: StreamName) -> Bool {
        publish?.covers(stream: stream.rawValue) ?? false
    }

    /// True if every stream the filter could cover may be read: a multi-stream subscription needs all of them.
    public func maySubscribe(to filter: EventFilter) -> Bool {
        subscribe?.includes(filter) ?? false
    }

    public func maySubscribe(to stream: String) -> Bool {
        subscribe?.covers(stream: stream) ?? false
    }

    public func require(publishTo stream: StreamName) throws(AuthError) {
        guard mayPublish(to: stream) else { throw AuthError.insufficientScope("publish", "the token may not publish to stream \(stream)") }
    }

    /// Refuses naming every stream or pattern of the subscription the token does not cover.
    public func require(subscribeTo filter: EventFilter) throws(AuthError) {
        guard !maySubscribe(to: filter) else { return }
        var denied = filter.allStreams ? ["*"] : []
        denied += filter.names.filter { !maySubscribe(to: $0) }
        denied += filter.prefixes.filter { !maySubscribe(to: EventFilter.prefix($0)) }.map { $0 + "*" }
        throw AuthError.insufficientScope("subscribe", "the token may not read \(denied.joined(separator: ", "))")
    }

    public func requireAdmin(_ action: String) throws(AuthError) {
        guard admin else { throw AuthError.insufficientScope("admin", "only an admin token may \(action)") }
    }
}
