import Foundation
import NIOHTTP1
import RewindServer
import Testing

/// Parses the Prometheus text exposition format strictly enough to fail on a malformed line.
struct PrometheusText {
    /// `name{labels}` → value.
    var samples: [String: Double] = [:]

    init(_ text: String) throws {
        let sample = try Regex(#"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"]*"(,[a-zA-Z_][a-zA-Z0-9_]*="[^"]*")*\})? (\S+)$"#)
        for line in text.split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# HELP ") || line.hasPrefix("# TYPE ") { continue }
            guard let match = try sample.wholeMatch(in: String(line)),
                let value = Double(match.output[4].substring ?? "")
                    ?? (match.output[4].substring == "+Inf" ? .infinity : nil)
            else {
                throw TestFailure("not a Prometheus sample line: \(line)")
            }
            samples[String(match.output[1].substring!) + String(match.output[2].substring ?? "")] = value
        }
    }

    subscript(_ key: String) -> Double? { samples[key] }
}

@Suite("Metrics")
struct MetricsTests {
    func metrics(_ server: TestServer) async throws -> PrometheusText {
        let reply = try await server.request(.GET, "/metrics")
        #expect(reply.status == 200)
        #expect(reply.headers["Content-Type"].first?.hasPrefix("text/plain; version=0.0.4") == true)
        return try PrometheusText(reply.body)
    }

    @Test func countersMoveWithTheWork() async throws {
        try await withRewind { server in
            _ = try await server.publishTexts("m", ["a", "bb", "ccc"])
            _ = try await server.publish("m", #"{"data": "x"}"#, headers: [("Idempotency-Key", "k")])
            _ = try await server.publish("m", #"{"data": "x"}"#, headers: [("Idempotency-Key", "k")])
            var text = try await metrics(server)
            #expect(text["rewind_events_appended_total"] == 4)
            #expect(text["rewind_appended_bytes_total"] == 7)
            #expect(text["rewind_idempotent_replays_total"] == 1)
            #expect((text["rewind_commits_total"] ?? 0) >= 1)
            #expect((text["rewind_commit_duration_seconds_count"] ?? 0) >= 1)
            #expect(text["rewind_subscribers"] ?? 0 == 0)

            // An open subscriber counts, and its events are deliveries.
            let subscriber = Task {
                try await server.sse("/v1/streams/m/events?from=earliest", timeout: .seconds(20)) { $0.messages.count >= 5 }
            }
            try await withDeadline(.seconds(10), "subscriber to connect") {
                while try await self.metrics(server)["rewind_subscribers"] != 1 { try await Task.sleep(for: .milliseconds(20)) }
            }
            _ = try await server.publishTexts("m", ["live"])
            _ = try await subscriber.value
            text = try await metrics(server)
            #expect(text["rewind_deliveries_total"] == 5)

            _ = try await server.sse("/v1/streams/m/events?live=false", headers: [("Last-Event-ID", "999")])
            try await withDeadline(.seconds(10), "subscribers to close") {
                while try await self.metrics(server)["rewind_subscribers"] != 0 { try await Task.sleep(for: .milliseconds(20)) }
            }
            text = try await metrics(server)
            #expect(text[#"rewind_signals_total{type="rewind.reset"}"#] == 1)
        }
    }

    @Test func slowReaderFallbackIsCounted() async throws {
        try await withRewind({ $0.windowEvents = 8 }) { server in
            _ = try await server.publishTexts("w", ["first"])
            // A subscriber in the window, then a burst bigger than the window before it reads again.
            let subscriber = Task {
                try await server.sse("/v1/streams/w/events?from=earliest", timeout: .seconds(20)) { $0.messages.count >= 201 }
            }
            try await Task.sleep(for: .milliseconds(300))
            for _ in 0..<10 { _ = try await server.publishTexts("w", (0..<20).map { "burst-\($0)" }) }
            let stream = try await subscriber.value
            #expect(stream.ids == Array(1...201))
            let text = try await metrics(server)
            #expect(text["rewind_deliveries_total"] == 201)
            // Each burst commit is bigger than the window: the subscriber had to go back to the log.
            #expect((text["rewind_slow_reader_fallbacks_total"] ?? 0) >= 1)
            #expect((text["rewind_log_reads_total"] ?? 0) >= 1)
        }
    }
}
