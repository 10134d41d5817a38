internal import Logging
internal import PostgresNIO
import RewindStore
import Synchronization

/// A query that PostgreSQL refused for a reason other than availability (a bug, a constraint): its message and
/// SQLSTATE, never the query's values.
public struct PostgresQueryError: Error, Sendable, CustomStringConvertible {
    public let message: String
    public let sqlState: String
    public var description: String { "PostgreSQL refused a query: \(message) (SQLSTATE \(sqlState))" }
}

enum PostgresFailures {
    /// What a failure of the driver means to the log's callers: `StoreError.unavailable` when PostgreSQL cannot
    /// serve now (unreachable, restarting, out of resources, timed out), `PostgresConfigurationError` when the
    /// settings cannot work (authentication, missing database, permissions), `PostgresQueryError` otherwise.
    /// `PSQLError`'s own description hides everything, and its debug description holds the query: neither goes
    /// out, only the server's message and code.
    static func map(_ error: any Error, _ configuration: PostgresStoreConfiguration) -> any Error {
        switch error {
        case is StoreError, is PostgresConfigurationError, is PostgresQueryError, is CancellationError:
            return error
        case let error as PSQLError:
            return map(error, configuration)
        case let error as NoConnection:
            return StoreError.unavailable("PostgreSQL at \(configuration.host):\(configuration.port): \(error)")
        default:
            if "\(type(of: error))" == "ConnectionPoolError" {
                return StoreError.unavailable("cannot get a connection to PostgreSQL at \(configuration.host):\(configuration.port)")
            }
            return StoreError.unavailable("PostgreSQL at \(configuration.host):\(configuration.port): \(error)")
        }
    }

    /// True when `error` says the connection it came from is gone (closed, cut, or ended by the server shutting
    /// down): PostgreSQL rolls back its open transaction by itself, and a ROLLBACK sent on it would only wait.
    static func connectionLost(_ error: any Error) -> Bool {
        guard let error = error as? PSQLError else { return false }
        switch error.code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown:
            return true
        case .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || state.hasPrefix("57P")
        default:
            return false
        }
    }

    private static func map(_ error: PSQLError, _ configuration: PostgresStoreConfiguration) -> any Error {
        let place = "PostgreSQL at \(configuration.host):\(configuration.port)"
        switch error.code {
        case .server:
            let state = error.serverInfo?[.sqlState] ?? "?????"
            let message = error.serverInfo?[.message] ?? "no message"
            switch state {
            case "28P01", "28000":
                return PostgresConfigurationError("\(place) refused user \(configuration.user): \(message)")
            case "3D000":
                return PostgresConfigurationError("\(place) has no database \(configuration.database): \(message)")
            case "42501":
                return PostgresConfigurationError(
                    "user \(configuration.user) may not do this in database \(configuration.database): \(message); Rewind needs a role that owns its database"
                )
            case "25006":
                return StoreError.unavailable("\(place) is read-only (a standby?): \(message)")
            default:
                // Connection exceptions, insufficient resources (disk full, too many connections), operator
                // intervention (shutdown, cancelled, timeouts), system errors, lock timeouts, serialization failures.
                let transient = ["08", "53", "57", "58", "40", "55"]
                if transient.contains(where: { state.hasPrefix($0) }) {
                    return StoreError.unavailable("\(place): \(message) (SQLSTATE \(state))")
                }
                return PostgresQueryError(message: message, sqlState: state)
            }
        case .sslUnsupported:
            return PostgresConfigurationError("\(place) does not offer TLS, which sslmode=\(configuration.sslMode.rawValue) requires")
        case .failedToAddSSLHandler:
            return PostgresConfigurationError("cannot set up TLS to \(place)")
        case .unsupportedAuthMechanism, .authMechanismRequiresPassword, .saslError:
            let hint = configuration.hasPassword ? "" : " (no password was given: put it in the URL, PGPASSWORD or a password file)"
            return PostgresConfigurationError("\(place) refused user \(configuration.user): authentication failed (\(error.code))\(hint)")
        case .connectionError:
            let reason = error.underlying.map { "\($0)" } ?? "connection failed"
            return StoreError.unavailable("cannot reach \(place): \(reason)")
        default:
            return StoreError.unavailable("\(place): \(error.code)")
        }
    }
}

/// Answers at once while PostgreSQL is known to be out of reach, instead of making every caller wait out the timeout.
///
/// The driver's pool does not fail a request when it cannot connect: it queues it and keeps trying (its own circuit
/// breaker trips only after a minute), so without this every publish during an outage would take the whole timeout,
/// and a request queued behind a group commit that waited it out would wait it out again. Once an operation fails
/// because PostgreSQL is unreachable (the connection refused or cut, the server shutting down, or no answer within
/// the timeout), one operation at a time goes through to find out whether it is back (the 25 ms poll of the head
/// makes sure one always does) and every other one fails at once with `StoreError.unavailable`. The first operation
/// that succeeds closes the gap, so recovery is as quick as the pool reconnects.
final class Reachability: Sendable {
    private struct State {
        /// Why PostgreSQL is out of reach, nil while it is not known to be.
        var unreachable: String?
        var probing = false
    }

    private let state = Mutex(State())
    private let lost = Mutex<(@Sendable (String) -> Void)?>(nil)
    private let configuration: PostgresStoreConfiguration
    private let logger: Logger

    init(configuration: PostgresStoreConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Sets the function called each time PostgreSQL is found out of reach, with why.
    func onLost(_ handler: @escaping @Sendable (String) -> Void) {
        lost.withLock { $0 = handler }
    }

    /// Why PostgreSQL is out of reach, while it is known to be; nil otherwise.
    var knownUnreachable: String? { state.withLock { $0.unreachable } }

    /// Runs `body`, an operation bounded by `limit`, unless PostgreSQL is out of reach and another call is already
    /// probing it; then throws `StoreError.unavailable` at once. Errors from `body` come out unmapped.
    func guarded<T: Sendable>(within limit: Duration, _ body: () async throws -> T) async throws -> T {
        let probe: Bool = try state.withLock { state in
            guard let reason = state.unreachable else { return false }
            if state.probing { throw StoreError.unavailable("\(reason); retrying") }
            state.probing = true
            return true
        }
        let started = ContinuousClock.now
        do {
            let value = try await body()
            // Only a call made while PostgreSQL was known to be out of reach says it is back: one that started
            // before may have been answered just before the server went away.
            let was = state.withLock { state -> String? in
                guard probe, let reason = state.unreachable else { return nil }
                state = State()
                return reason
            }
            if was != nil { logger.notice("PostgreSQL is reachable again", metadata: ["db.url": "\(configuration)"]) }
            return value
        } catch {
            let reason = unreachable(error, timedOut: ContinuousClock.now - started >= limit)
            let tripped = state.withLock { state in
                if probe { state.probing = false }
                guard let reason else { return false }
                defer { state.unreachable = reason }
                return state.unreachable == nil
            }
            if tripped, let reason {
                logger.warning(
                    "PostgreSQL is out of reach: answering unavailable at once until it is back",
                    metadata: ["db.url": "\(configuration)", "error": "\(reason)"]
                )
                lost.withLock { $0 }?(reason)
            }
            throw error
        }
    }

    /// Why `error` means PostgreSQL cannot be reached now, or nil when it means something else (a refused query,
    /// a lock or serialization conflict, a read-only server): no connection, the connection cut, the server shutting
    /// down or not yet accepting connections, or nothing within the timeout.
    private func unreachable(_ error: any Error, timedOut: Bool) -> String? {
        let mapped = PostgresFailures.map(error, configuration)
        guard case .unavailable(let reason) = mapped as? StoreError else { return nil }
        if timedOut || error is NoConnection || "\(type(of: error))" == "ConnectionPoolError" { return reason }
        guard let error = error as? PSQLError else { return nil }
        switch error.code {
        case .connectionError, .serverClosedConnection, .uncleanShutdown:
            return reason
        case .server:
            let state = error.serverInfo?[.sqlState] ?? ""
            return state.hasPrefix("08") || ["57P01", "57P02", "57P03"].contains(state) ? reason : nil
        default:
            return nil
        }
    }
}

/// Runs `body` on a connection of the pool within `limit`, failing with `NoConnection` when the pool has none to
/// give within `leaseLimit`. A healthy pool hands one out in microseconds, or in one connection setup when it has
/// to open one; the pool waits without end when PostgreSQL refuses connections, so a lease that takes this long
/// means PostgreSQL is out of reach, and saying so early keeps the answer well within the operation's timeout.
func withPooledConnection<T: Sendable>(
    _ client: PostgresClient,
    within limit: Duration,
    leaseWithin leaseLimit: Duration,
    _ what: @autoclosure () -> String,
    _ body: @escaping @Sendable (PostgresConnection) async throws -> T
) async throws -> T {
    let leased = LeaseFlag()
    return try await withDeadline(limit, what(), lease: (leaseLimit, leased)) {
        try await client.withConnection { connection in
            leased.value.withLock { $0 = true }
            return try await body(connection)
        }
    }
}

/// Set once `withPooledConnection`'s body has its connection.
final class LeaseFlag: Sendable {
    let value = Mutex(false)
}

/// The pool had no connection to give within the lease limit (see `withPooledConnection`).
struct NoConnection: Error, CustomStringConvertible {
    let limit: Duration
    var description: String { "no connection to PostgreSQL within \(limit)" }
}

/// Runs `body` but answers within `limit`: past it, throws `StoreError.unavailable` and leaves the body to end
/// on its own (the driver's queries do not stop on cancellation; a connection lease does). This is what keeps an
/// unreachable or stalled server from hanging a request: the pool waits for a connection as long as it is asked to.
/// With `lease`, it also fails with `NoConnection` when the flag is not set by `lease.limit`. A value the body
/// returns after the caller was answered (timed out or cancelled) goes to `discard`: a connection opened too late
/// must still be closed.
func withDeadline<T: Sendable>(
    _ limit: Duration,
    _ what: @autoclosure () -> String,
    lease: (limit: Duration, flag: LeaseFlag)? = nil,
    discard: (@Sendable (T) async -> Void)? = nil,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T {
    let timeoutMessage = what()
    let race = DeadlineRace<T>()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            race.slot.withLock { $0 = continuation }
            let work = Task {
                let result: Result<T, any Error>
                do { result = .success(try await body()) } catch { result = .failure(error) }
                if race.finish(result) {
                    race.tasks.withLock { $0.timer }?.cancel()
                } else if case .success(let late) = result, let discard {
                    await discard(late)
                }
            }
            let timer = Task {
                var waited = Duration.zero
                if let lease, lease.limit < limit {
                    try? await Task.sleep(for: lease.limit)
                    guard !Task.isCancelled else { return }
                    if lease.flag.value.withLock({ !$0 }), race.finish(.failure(NoConnection(limit: lease.limit))) {
                        race.tasks.withLock { $0.work }?.cancel()
                        return
                    }
                    waited = lease.limit
                }
                try? await Task.sleep(for: limit - waited)
                guard !Task.isCancelled else { return }
                if race.finish(.failure(StoreError.unavailable("\(timeoutMessage) took longer than \(limit)"))) {
                    race.tasks.withLock { $0.work }?.cancel()
                }
            }
            race.tasks.withLock { $0 = (work, timer) }
            // The body may have finished before the timer was stored where it could stop it.
            if race.slot.withLock({ $0 == nil }) { timer.cancel() }
        }
    } onCancel: {
        let (work, timer) = race.tasks.withLock { $0 }
        work?.cancel()
        timer?.cancel()
        _ = race.finish(.failure(CancellationError()))
    }
}

/// The state `withDeadline`'s two tasks share: whoever finishes first resumes the caller.
private final class DeadlineRace<T: Sendable>: Sendable {
    let slot = Mutex<CheckedContinuation<T, any Error>?>(nil)
    let tasks = Mutex<(work: Task<Void, Never>?, timer: Task<Void, Never>?)>((nil, nil))

    /// Resumes the caller with `result` unless it was resumed already; true if this call did.
    func finish(_ result: Result<T, any Error>) -> Bool {
        guard
            let continuation = slot.withLock({ state -> CheckedContinuation<T, any Error>? in
                defer { state = nil }
                return state
            })
        else { return false }
        continuation.resume(with: result)
        return true
    }
}

extension PostgresStoreConfiguration {
    /// How long an operation waits for a pooled connection before PostgreSQL counts as out of reach (see
    /// `withPooledConnection`): a quarter of the timeout, at least half a second.
    var leaseTimeout: Duration { max(timeout / 4, .milliseconds(500)) }
}
