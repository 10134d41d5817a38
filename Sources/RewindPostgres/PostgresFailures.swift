internal import PostgresNIO
public import RewindStore
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
        default:
            if "\(type(of: error))" == "ConnectionPoolError" {
                return StoreError.unavailable("cannot get a connection to PostgreSQL at \(configuration.host):\(configuration.port)")
            }
            return StoreError.unavailable("PostgreSQL at \(configuration.host):\(configuration.port): \(error)")
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

/// Runs `body` but answers within `limit`: past it, throws `StoreError.unavailable` and leaves the body to end
/// on its own (the driver's queries do not stop on cancellation; a connection lease does). This is what keeps an
/// unreachable or stalled server from hanging a request: the pool waits for a connection as long as it is asked to.
func withDeadline<T: Sendable>(
    _ limit: Duration,
    _ what: @autoclosure () -> String,
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
                if race.finish(result) { race.tasks.withLock { $0.timer }?.cancel() }
            }
            let timer = Task {
                try? await Task.sleep(for: limit)
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
