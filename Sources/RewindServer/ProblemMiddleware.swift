import HTTPTypes
import Hummingbird
import Logging
import NIOHTTP1
import RewindCore
import RewindStore

/// Answers every failure as problem+json: Rewind's own errors with their status, Hummingbird's (unknown route,
/// body over the limit) with theirs, anything unexpected as 500 after logging it.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            throw problem
        } catch let error as ValidationError {
            throw Problem(error)
        } catch let error as AuthError {
            throw error.problem
        } catch let error as StoreError {
            if case .streamDeleted = error { throw Problem(.gone, error.description, field: "stream") }
            throw Problem(.serviceUnavailable, error.description, headers: [.retryAfter: "1"])
        } catch let error as HTTPError {
            // SPEC §2: the detail names what is at fault, and `field` says which part of the request it is.
            switch error.status {
            case .notFound:
                throw Problem(error.status, "no such resource: \(request.method) \(request.uri.path)", field: "path", headers: error.headers)
            case .contentTooLarge:
                throw Problem(error.status, "request body is over the size limit", field: "body", headers: error.headers)
            default:
                throw Problem(error.status, error.body ?? error.status.reasonPhrase, headers: error.headers)
            }
        } catch let error as HTTPParserError {
            // A body cut short (the client closed its side before Content-Length bytes) or otherwise malformed.
            throw Problem(.badRequest, "the request is malformed: \(error)", field: "body")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            throw Problem(.internalServerError, "internal error")
        }
    }
}

/// One log line per request: method, path (never the query, which may hold a token), status and duration.
struct RequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        func log(_ status: Int) {
            let elapsed = ContinuousClock.now - start
            let milliseconds = Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15
            context.logger.info(
                "request",
                metadata: [
                    "http.method": "\(request.method)",
                    "http.path": "\(request.uri.path)",
                    "http.status": "\(status)",
                    "http.duration_ms": "\((milliseconds * 1000).rounded() / 1000)",
                ]
            )
        }
        do {
            let response = try await next(request, context)
            log(response.status.code)
            return response
        } catch let error as any HTTPResponseError {
            log(error.status.code)
            throw error
        } catch {
            log(500)
            throw error
        }
    }
}
