import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RewindServer
import RewindStore
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

    /// Open SSE streams in either state.
    var subscribers: Double? {
        guard let live = self[#"rewind_subscribers{state="live"}"#], let catchingUp = self[#"rewind_subscribers{state="catching_up"}"#]
        else { return nil }
        return live + catchingUp
    }
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
            #expect(text.subscribers == 0)

            // An open subscriber counts, and its events are deliveries.
            let subscriber = Task {
                try await server.sse("/v1/streams/m/events?from=earliest", timeout: .seconds(20)) { $0.messages.count >= 5 }
            }
            try await withDeadline(.seconds(10), "subscriber to connect") {
                while try await self.metrics(server).subscribers != 1 { try await Task.sleep(for: .milliseconds(20)) }
            }
            _ = try await server.publishTexts("m", ["live"])
            _ = try await subscriber.value
            text = try await metrics(server)
            #expect(text["rewind_deliveries_total"] == 5)

            _ = try await server.sse("/v1/streams/m/events?live=false", headers: [("Last-Event-ID", "999")])
            try await withDeadline(.seconds(10), "subscribers to close") {
                while try await self.metrics(server).subscribers != 0 { try await Task.sleep(for: .milliseconds(20)) }
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
            // In the window (it has read "first" from there) before the burst, however busy the machine.
            try await withDeadline(.seconds(10), "the subscriber to read from the window") {
                while try await self.metrics(server)[#"rewind_subscribers{state="live"}"#] != 1 {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
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

    @Test func latenciesGroupsAndStatesAreMeasured() async throws {
        try await withRewind { server in
            // Nothing yet: every labelled series is there at 0, histograms are empty.
            var text = try await metrics(server)
            for kind in ["disk_full", "read_only", "io", "busy", "corrupt", "other"] {
                #expect(text["rewind_store_errors_total{kind=\"\(kind)\"}"] == 0, "\(kind)")
            }
            #expect(text[#"rewind_subscribers{state="live"}"#] == 0)
            #expect(text["rewind_publish_duration_seconds_count"] == 0)
            #expect(text["rewind_log_head"] == 0)

            _ = try await server.publishTexts("g", ["a", "b", "c"])
            _ = try await server.publish("g", #"{"data": "d"}"#)
            text = try await metrics(server)
            #expect(text["rewind_publish_duration_seconds_count"] == 2)
            #expect((text["rewind_publish_duration_seconds_sum"] ?? 0) > 0)
            #expect(text[#"rewind_publish_duration_seconds_bucket{le="+Inf"}"#] == 2)
            #expect(text["rewind_commit_requests_sum"] == 2, "two publish requests, however they were grouped")
            #expect(text["rewind_commit_events_sum"] == 4)
            #expect(text["rewind_commit_events_count"] == text["rewind_commits_total"])
            #expect(text["rewind_log_head"] == 4)
            #expect((text["rewind_log_size_bytes"] ?? 0) > 4096, "the database file and its write-ahead log")

            // A caught-up subscriber counts as live; what it gets after waiting has its lag measured.
            let subscriber = Task {
                try await server.sse("/v1/streams/g/events?from=earliest", timeout: .seconds(20)) { $0.messages.count >= 7 }
            }
            try await withDeadline(.seconds(10), "subscriber to read the window") {
                while try await self.metrics(server)[#"rewind_subscribers{state="live"}"#] != 1 {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            #expect(try await metrics(server)["rewind_delivery_lag_seconds_count"] == 0, "a replay is not delivery lag")
            for data in ["e", "f", "g"] {
                _ = try await server.publishTexts("g", [data])
                try await Task.sleep(for: .milliseconds(50))
            }
            _ = try await subscriber.value
            text = try await metrics(server)
            let lagSamples = try #require(text["rewind_delivery_lag_seconds_count"])
            #expect(lagSamples >= 1 && lagSamples <= 3, "one sample per written batch of live events")
            let lag = try #require(text["rewind_delivery_lag_seconds_sum"])
            #expect(lag > 0 && lag / lagSamples < 5, "commit to socket takes a positive time, well under seconds")
            #expect((text["rewind_window_reads_total"] ?? 0) >= 2)
        }
    }

    @Test func catchingUpSubscribersAreCountedApart() async throws {
        try await withRewind({ $0.windowEvents = 8 }) { server in
            // 8 MB of history, far more than the socket buffers hold: a replaying subscriber that does not read
            // stays blocked on its socket while reading from the log.
            let big = String(repeating: "x", count: 4000)
            for _ in 0..<4 { _ = try await server.publishTexts("c", Array(repeating: big, count: 500)) }
            let stalled = Task {
                var request = HTTPClientRequest(url: server.base + "/v1/streams/c/events?from=earliest")
                request.headers.add(name: "Accept", value: "text/event-stream")
                let response = try await server.client.execute(request, timeout: .seconds(60))
                #expect(response.status.code == 200)
                try await Task.sleep(for: .seconds(60))  // never reads the body; cancelled below
                _ = response
            }
            // A subscriber counts as catching up from the moment it joins, before its first page is read: wait for
            // that read too.
            try await withDeadline(.seconds(10), "the replaying subscriber to count as catching up and read the log") {
                while true {
                    let text = try await self.metrics(server)
                    if text[#"rewind_subscribers{state="catching_up"}"#] == 1, (text["rewind_log_reads_total"] ?? 0) >= 1 { break }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            var text = try await metrics(server)
            #expect(text[#"rewind_subscribers{state="live"}"#] == 0)
            #expect((text["rewind_log_reads_total"] ?? 0) >= 1)

            // A second subscriber that follows from now on reads the window: live, next to the one catching up.
            let follower = Task {
                try await server.sse("/v1/streams/c/events", timeout: .seconds(20)) { $0.messages.count >= 1 }
            }
            try await withDeadline(.seconds(10), "the follower to count as live") {
                while try await self.metrics(server)[#"rewind_subscribers{state="live"}"#] != 1 {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            _ = try await server.publishTexts("c", ["now"])
            _ = try await follower.value
            stalled.cancel()
            try await withDeadline(.seconds(10), "subscribers to close") {
                while try await self.metrics(server).subscribers != 0 { try await Task.sleep(for: .milliseconds(20)) }
            }
            text = try await metrics(server)
            #expect(text[#"rewind_subscribers{state="catching_up"}"#] == 0, "a closed subscriber leaves its state")
        }
    }

    @Test func failedCommitsAreCountedByKind() async throws {
        try await withRewind({ $0.store.busyTimeout = .milliseconds(200) }) { server in
            _ = try await server.publishTexts("e", ["before"])
            // Another connection holding the write lock past the busy timeout: the commit fails as `busy`.
            let lock = try WriteLockHolder(path: server.databasePath)
            #expect(try await server.publish("e", #"{"data": 1}"#).status == 503)
            lock.release()
            let text = try await metrics(server)
            #expect(text[#"rewind_store_errors_total{kind="busy"}"#] == 1)
            #expect(text["rewind_commit_failures_total"] == 1)
            for kind in ["disk_full", "read_only", "io", "corrupt", "other"] {
                #expect(text["rewind_store_errors_total{kind=\"\(kind)\"}"] == 0, "\(kind)")
            }
            #expect(text["rewind_publish_duration_seconds_count"] == 1, "a refused publish is not in the latency")
        }
    }

    /// The "Metrics" table of docs/operations.md and `/metrics` list the same names, with the same types and labels.
    @Test func docsListWhatMetricsExports() async throws {
        let readme = try String(contentsOf: OpenAPITests.root.appendingPathComponent("docs/operations.md"), encoding: .utf8)
        let section = try #require(readme.components(separatedBy: "\n## Metrics\n").dropFirst().first?.components(separatedBy: "\n## ").first)
        var documented: [String: String] = [:]
        let row = try Regex(#"^\| `([a-z_]+)` \| (counter|gauge|histogram) \|\s*((?:`[a-z_]+`(?:, )?)*)\s*\|"#)
        for line in section.split(separator: "\n") where line.hasPrefix("| `") {
            let match = try #require(try row.firstMatch(in: String(line)), "not a metrics row: \(line)")
            let labels = String(match.output[3].substring ?? "").replacingOccurrences(of: "`", with: "")
            documented[String(match.output[1].substring!)] = "\(match.output[2].substring!) {\(labels)}"
        }
        let readmeTable = documented
        try await withRewind { server in
            let documented = readmeTable
            let body = try await server.request(.GET, "/metrics").body
            var exported: [String: String] = [:]
            var labels: [String: Set<String>] = [:]
            for line in body.split(separator: "\n") {
                if line.hasPrefix("# TYPE ") {
                    let parts = line.split(separator: " ")
                    exported[String(parts[2])] = String(parts[3])
                } else if !line.hasPrefix("#"), let brace = line.firstIndex(of: "{") {
                    var name = String(line[..<brace])
                    for suffix in ["_bucket", "_sum", "_count"] where exported[name] == nil && name.hasSuffix(suffix) {
                        name = String(name.dropLast(suffix.count))
                    }
                    let names = line[line.index(after: brace)..<line.firstIndex(of: "}")!].split(separator: ",").map {
                        String($0.split(separator: "=")[0])
                    }
                    labels[name, default: []].formUnion(names.filter { $0 != "le" })
                }
            }
            let actual = Dictionary(
                uniqueKeysWithValues: exported.map { name, type in
                    (name, "\(type) {\((labels[name] ?? []).sorted().joined(separator: ", "))}")
                }
            )
            #expect(!actual.isEmpty)
            for name in Set(actual.keys).union(documented.keys).sorted() {
                #expect(
                    documented[name] == actual[name],
                    "\(name): README says \(documented[name] ?? "nothing"), /metrics has \(actual[name] ?? "nothing")"
                )
            }
        }
    }
}
