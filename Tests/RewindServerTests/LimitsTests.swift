import Foundation
import NIOHTTP1
import RewindServer
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The limits of SPEC §3 that are not about publish bodies (those are in `PublishTests`), the secure headers, and
/// CORS: each refusal clear, each place given back.
@Suite struct LimitsTests {
    @Test func subscriptionsOverTheProcessLimitAre429UntilOneCloses() async throws {
        try await withRewind({ $0.maxSubscribers = 2 }) { server in
            _ = try await server.publishTexts("orders", ["a"])
            let (firstOpen, secondOpen) = (Flag(), Flag())
            // Two subscriptions hold their places until they have seen the second event.
            async let first = server.sse("/v1/streams/orders/events?from=earliest&limit=2") { _ in firstOpen.set() }
            async let second = server.sse("/v1/streams/orders/events?from=earliest&limit=2") { _ in secondOpen.set() }
            try await waitUntil("both subscriptions are open") { firstOpen.isSet && secondOpen.isSet }
            let refused = try await server.request(.GET, "/v1/streams/orders/events", headers: [("Accept", "text/event-stream")])
            #expect(refused.status == 429)
            #expect(refused.headers.first(name: "Retry-After") != nil)
            #expect((refused.object["detail"] as? String)?.contains("limit of 2 subscriptions") == true)
            _ = try await server.publishTexts("orders", ["b"])
            #expect(try await first.ids == [1, 2])
            #expect(try await second.ids == [1, 2])
            // Their places are free again.
            let again = try await server.sse("/v1/streams/orders/events?from=earliest&live=false")
            #expect(again.status == 200 && again.ids == [1, 2])
        }
    }

    @Test func subscriptionsOverThePerSubjectLimitAre429ForThatSubjectOnly() async throws {
        try await withRewind({
            $0.auth = .secret(AuthTests.secret)
            $0.maxSubscribersPerSubject = 1
        }) { server in
            let alice = try await AuthTests.token(publish: ["*"], subscribe: ["*"], subject: "alice")
            let aliceAgain = try await AuthTests.token(subscribe: ["orders"], subject: "alice")
            let bob = try await AuthTests.token(subscribe: ["*"], subject: "bob")
            #expect(try await server.publish("orders", #"{"data": 1}"#, headers: [("Authorization", "Bearer \(alice)")]).status == 201)
            let opened = Flag()
            async let held = server.sse("/v1/streams/orders/events?from=earliest&limit=2", headers: [("Authorization", "Bearer \(alice)")]) { _ in
                opened.set()
            }
            try await waitUntil("alice's subscription is open") { opened.isSet }
            let refused = try await server.request(
                .GET,
                "/v1/streams/orders/events",
                headers: [("Accept", "text/event-stream"), ("Authorization", "Bearer \(aliceAgain)")]
            )
            #expect(refused.status == 429, "a second token for the same subject counts against it")
            #expect((refused.object["detail"] as? String)?.contains("subject") == true)
            let other = try await server.sse("/v1/streams/orders/events?from=earliest&live=false", headers: [("Authorization", "Bearer \(bob)")])
            #expect(other.status == 200 && other.ids == [1])
            #expect(try await server.publish("orders", #"{"data": 2}"#, headers: [("Authorization", "Bearer \(alice)")]).status == 201)
            #expect(try await held.ids == [1, 2])
        }
    }

    @Test func aSubscriptionNamingTooManyStreamsIs400() async throws {
        try await withRewind({ $0.maxStreamsPerSubscription = 3 }) { server in
            let ok = try await server.sse("/v1/events?stream=a&stream=b&stream=c.*&live=false")
            #expect(ok.status == 200)
            let reply = try await server.request(.GET, "/v1/events?stream=a&stream=b&stream=c&stream=d&live=false")
            #expect(reply.status == 400)
            #expect(reply.object["field"] as? String == "stream")
            #expect((reply.object["detail"] as? String)?.contains("at most 3") == true)
        }
    }

    @Test func anOversizedRequestHeadIsRefusedAndNothingIsWritten() async throws {
        try await withRewind({ $0.maxHeaderBytes = 4096 }) { server in
            let socket = try RawSocket(port: server.port)
            try socket.send(
                "POST /v1/streams/orders/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Filler: \(String(repeating: "a", count: 8192))\r\nContent-Length: 11\r\n\r\n{\"data\": 1}"
            )
            let answer = await socket.receiveAll(seconds: 5)
            // The HTTP decoder refuses it before any handler runs, with a bare 400.
            #expect(answer.hasPrefix("HTTP/1.1 400") || answer.hasPrefix("HTTP/1.1 431"), "answered: \(answer.prefix(200))")
            #expect(socket.closedByPeer, "the connection is closed")
            #expect(try await server.history("orders").isEmpty)
            // A normal request still works.
            #expect(try await server.publish("orders", #"{"data": 1}"#).status == 201)
        }
    }

    @Test func aChunkedBodyOverTheLimitIs413AndACutShortBodyIs400() async throws {
        try await withRewind({ $0.maxBodyBytes = 1024 }) { server in
            let chunked = try RawSocket(port: server.port)
            let chunk = String(repeating: "x", count: 600)
            try chunked.send(
                "POST /v1/streams/orders/events HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
                    + "258\r\n\(chunk)\r\n258\r\n\(chunk)\r\n0\r\n\r\n"
            )
            let tooLarge = await chunked.receiveAll(seconds: 3)
            #expect(tooLarge.hasPrefix("HTTP/1.1 413"), "answered: \(tooLarge.prefix(200))")
            #expect(tooLarge.contains("limit of 1024 bytes"))

            let cut = try RawSocket(port: server.port)
            try cut.send(
                "POST /v1/streams/orders/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n{\"data\": \"trunc"
            )
            cut.shutdownWrite()
            let malformed = await cut.receiveAll(seconds: 3)
            #expect(malformed.hasPrefix("HTTP/1.1 400"), "answered: \(malformed.prefix(200))")
            #expect(try await server.history("orders").isEmpty)
        }
    }

    @Test func aConnectionThatNeverSendsAWholeRequestIsClosed() async throws {
        try await withRewind({ $0.idleTimeout = .seconds(1) }) { server in
            let silent = try RawSocket(port: server.port)
            let slow = try RawSocket(port: server.port)
            try slow.send("GET /v1/streams HTTP/1.1\r\nHost: x\r\n")
            let start = ContinuousClock.now
            // The slow one keeps trickling header bytes; neither ever completes a request.
            for _ in 0..<6 {
                try? slow.send("X-A: b\r\n")
                try await Task.sleep(for: .milliseconds(400))
            }
            _ = await silent.receiveAll(seconds: 3)
            _ = await slow.receiveAll(seconds: 3)
            #expect(silent.closedByPeer && slow.closedByPeer)
            #expect(ContinuousClock.now - start < .seconds(6))
        }
    }

    @Test func anOpenStreamOutlivesTheIdleTimeout() async throws {
        try await withRewind({ $0.idleTimeout = .milliseconds(500) }) { server in
            async let stream = server.sse("/v1/streams/orders/events?limit=1", timeout: .seconds(20))
            try await Task.sleep(for: .seconds(2))
            _ = try await server.publishTexts("orders", ["late"])
            let result = try await stream
            #expect(result.status == 200 && result.ids == [1])
        }
    }

    @Test func everyResponseCarriesNosniffAndAPICachingRules() async throws {
        try await withRewind { server in
            let published = try await server.publish("orders", #"{"data": 1}"#)
            let refused = try await server.publish("orders", "{")
            let missing = try await server.request(.GET, "/nowhere")
            let read = try await server.request(.GET, "/v1/streams/orders/events", headers: [("Accept", "application/json")])
            for reply in [published, refused, missing, read] {
                #expect(reply.headers.first(name: "X-Content-Type-Options") == "nosniff")
                #expect(reply.headers.first(name: "Cache-Control") == "no-store")
            }
            let stream = try await server.sse("/v1/streams/orders/events?from=earliest&live=false")
            #expect(stream.headers.first(name: "X-Content-Type-Options") == "nosniff")
            #expect(stream.headers.first(name: "Cache-Control") == "no-cache")
        }
    }

    @Test func corsAnswersAllowedOriginsWithCredentialsAndIgnoresOthers() async throws {
        try await withRewind({
            $0.auth = .secret(AuthTests.secret)
            $0.corsOrigins = ["https://app.example"]
        }) { server in
            let preflight = try await server.request(
                .OPTIONS,
                "/v1/streams/orders/events",
                headers: [
                    ("Origin", "https://app.example"), ("Access-Control-Request-Method", "POST"),
                    ("Access-Control-Request-Headers", "authorization, content-type, idempotency-key, last-event-id"),
                ]
            )
            #expect(preflight.status == 204)
            #expect(preflight.headers.first(name: "Access-Control-Allow-Origin") == "https://app.example")
            #expect(preflight.headers.first(name: "Access-Control-Allow-Credentials") == "true")
            let allowed = (preflight.headers.first(name: "Access-Control-Allow-Headers") ?? "").lowercased()
            for header in ["authorization", "content-type", "idempotency-key", "last-event-id"] {
                #expect(allowed.contains(header), "\(header) in \(allowed)")
            }
            #expect(preflight.headers.first(name: "Access-Control-Allow-Methods")?.contains("POST") == true)
            // A refused request from the allowed origin still carries CORS headers, so the page can read the 401.
            let unauthorized = try await server.publish("orders", #"{"data": 1}"#, headers: [("Origin", "https://app.example")])
            #expect(unauthorized.status == 401)
            #expect(unauthorized.headers.first(name: "Access-Control-Allow-Origin") == "https://app.example")
            #expect(unauthorized.headers.first(name: "Access-Control-Expose-Headers")?.contains("WWW-Authenticate") == true)
            // Another origin gets no CORS headers at all: the browser refuses the response.
            for method in [NIOHTTP1.HTTPMethod.OPTIONS, .GET] {
                let other = try await server.request(
                    method,
                    "/v1/streams/orders/events",
                    headers: [("Origin", "https://evil.example"), ("Access-Control-Request-Method", "GET")]
                )
                #expect(other.headers.first(name: "Access-Control-Allow-Origin") == nil, "\(method)")
                #expect(other.headers.first(name: "Access-Control-Allow-Credentials") == nil, "\(method)")
            }
        }
    }
}

/// Set once from any task; the stream callbacks return false so the stream goes on.
final class Flag: Sendable {
    private let state = Mutex(false)
    var isSet: Bool { state.withLock { $0 } }
    func set() -> Bool {
        state.withLock { $0 = true }
        return false
    }
}

/// Polls `condition` for up to 10 seconds.
func waitUntil(_ what: String, _ condition: @Sendable () -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(10)
    while !condition() {
        guard ContinuousClock.now < deadline else { throw TestFailure("timed out waiting until \(what)") }
        try await Task.sleep(for: .milliseconds(20))
    }
}

/// A plain TCP connection to the server, for requests no HTTP client would send.
final class RawSocket {
    private let fd: Int32
    private(set) var closedByPeer = false

    /// - Parameter receiveBuffer: the socket's receive buffer in bytes (`SO_RCVBUF`), for a client that should fill
    ///   up after little data when it stops reading.
    init(port: Int, receiveBuffer: Int32? = nil) throws {
        fd = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        if var size = receiveBuffer {
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard result == 0 else { throw TestFailure("cannot connect to 127.0.0.1:\(port)") }
    }

    deinit { Glibc.close(fd) }

    func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        let sent = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard sent == bytes.count else { throw TestFailure("send failed") }
    }

    /// Ends the sending side, as a client that gives up mid-request does.
    func shutdownWrite() {
        Glibc.shutdown(fd, Int32(SHUT_WR))
    }

    /// Reads until `done` says what arrived so far is enough, the peer closes, or `seconds` pass; returns every byte
    /// that arrived. Polls without blocking, as `receiveAll` does.
    func receive(seconds: Int, until done: ([UInt8]) -> Bool) async -> [UInt8] {
        var received: [UInt8] = []
        let deadline = ContinuousClock.now + .seconds(seconds)
        var buffer = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now < deadline, !done(received) {
            let count = buffer.withUnsafeMutableBytes { Glibc.recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                received += buffer[0..<count]
            } else if count == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) {
                closedByPeer = true
                break
            } else {
                try? await Task.sleep(for: .milliseconds(10))
            }
        }
        return received
    }

    /// What arrives until the peer closes or `seconds` pass. Polls without blocking: a blocked thread of the
    /// cooperative pool is one the in-process server cannot use to answer.
    func receiveAll(seconds: Int) async -> String {
        String(decoding: await receive(seconds: seconds) { _ in false }, as: UTF8.self)
    }
}
