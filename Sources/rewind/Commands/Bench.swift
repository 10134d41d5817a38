import ArgumentParser
import RewindBench

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load a running server over loopback HTTP and print what it sustained.",
        discussion: """
            Works against Rewind and against other SSE servers (Nchan) through URL templates in which {stream} \
            stands for the stream or channel name. Repeat --publish-url or --subscribe-url to spread publishing \
            connections or subscribers over several servers, such as the nodes of one cluster: connection i takes \
            the i-th URL, round-robin. Subscribers parse `data: <seq> <send time>` payloads, so every \
            subscriber checks that it got every event once and in order, and latency is measured end to end. \
            The client runs on one thread and reports its own CPU time, which shows whether it was the bottleneck.

            Examples:
              rewind bench ingest --connections 64 --duration 10
              rewind bench fanout --subscribers 1000 --rate 1000 --server-pid 1234
              rewind bench replay --events 1000000 --batch 1000
              rewind bench idle --connections 10000 --server-pid 1234
              rewind bench fanout --subscribers 1000 --rate 1000 \\
                --subscribe-url 'http://127.0.0.1:8081/v1/streams/{stream}/events' \\
                --subscribe-url 'http://127.0.0.1:8082/v1/streams/{stream}/events'
            """,
        subcommands: [Ingest.self, Fanout.self, Replay.self, Idle.self]
    )

    struct Common: ParsableArguments {
        /// The URL both templates default to.
        static let defaultURL = "http://127.0.0.1:8080/v1/streams/{stream}/events"

        @Option(
            name: .customLong("publish-url"),
            help: ArgumentHelp(
                "Publish URL template; {stream} is replaced by the stream name. Repeat it to spread the publishing "
                    + "connections over several servers, round-robin. (default: \(defaultURL))",
                valueName: "publish-url"
            )
        )
        var publishURLs: [String] = []

        @Option(
            name: .customLong("subscribe-url"),
            help: ArgumentHelp(
                "Subscribe (SSE) URL template; {stream} is replaced by the stream name. Repeat it to spread the "
                    + "subscribers over several servers, round-robin. (default: \(defaultURL))",
                valueName: "subscribe-url"
            )
        )
        var subscribeURLs: [String] = []

        @Option(help: "Stream or channel name (default: a fresh one per run).")
        var stream: String?

        /// `--stream`, or a fresh name; not the option's initial value, which help would print as a second default.
        var streamName: String { stream ?? "bench\(UInt32.random(in: 0...UInt32.max))" }

        @Option(help: "Bytes of data per event (at least the payload's sequence number and time).")
        var eventSize = 64

        @Flag(help: "Print one JSON object instead of aligned lines.")
        var json = false

        /// The publish and subscribe templates, each list in the order given, or its default URL alone.
        func templates(subscribeDefault: String = defaultURL) throws -> (publish: [URLTemplate], subscribe: [URLTemplate]) {
            func parse(_ urls: [String], default: String) throws -> [URLTemplate] {
                var templates: [URLTemplate] = []
                for url in urls.isEmpty ? [`default`] : urls {
                    do {
                        templates.append(try URLTemplate(url))
                    } catch {
                        throw ValidationError(error.description)
                    }
                }
                return templates
            }
            return (try parse(publishURLs, default: Self.defaultURL), try parse(subscribeURLs, default: subscribeDefault))
        }

        func print(_ report: BenchReport) {
            Swift.print(json ? report.json : report.text)
        }
    }

    struct Ingest: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish as fast as the server answers over C keep-alive connections.",
            usage: "rewind bench ingest [<options>]",
            discussion: """
                Each connection sends one request at a time, the next as soon as the answer arrives. The report \
                gives events and requests a second, and the latency from request to answer.

                Examples:
                  rewind bench ingest --connections 64 --duration 10
                  rewind bench ingest --batch 100 --events 1000000
                  rewind bench ingest --publish-url 'http://127.0.0.1:8080/pub?id={stream}'
                """
        )
        @OptionGroup var common: Common
        @Option(help: "Connections publishing at once.") var connections = 16
        @Option(help: "Seconds to run.") var duration = 10.0
        @Option(help: "Events per request; above 1 sends NDJSON batches (Rewind only).") var batch = 1
        @Option(help: "Stop after this many events (to fill a log), even before the duration ends.") var events: Int?

        func run() async throws {
            let (publish, _) = try common.templates()
            let options = IngestOptions(
                publish: publish,
                connections: connections,
                duration: .milliseconds(Int64(duration * 1000)),
                batch: batch,
                eventSize: common.eventSize,
                maxEvents: events,
                stream: common.streamName
            )
            common.print(try await RewindBench.Bench.ingest(options))
        }
    }

    struct Fanout: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "S subscribers on one stream while events are published at R a second.",
            usage: "rewind bench fanout [<options>]",
            discussion: """
                Every subscriber checks that it received every event once and in order; the report gives the latency \
                from publish to receipt, the publish requests' latency (request to answer), and with --server-pid the \
                server's memory and its CPU seconds (user + system, from the first publish until every subscriber \
                has everything) per delivery.

                Examples:
                  rewind bench fanout --subscribers 1000 --rate 1000 --duration 20
                  rewind bench fanout --subscribers 100 --slow-subscribers 10 --server-pid 1234
                """
        )
        @OptionGroup var common: Common
        @Option(help: "SSE subscribers.") var subscribers = 100
        @Option(help: "Events published per second.") var rate = 100
        @Option(help: "Seconds of publishing.") var duration = 10.0
        @Option(help: "Publishing connections, each with one request in flight.") var publishers = 1
        @Option(help: "Subscribers that read one small chunk a second while publishing goes on.") var slowSubscribers = 0
        @Option(help: "The server's process id, to report its memory and its CPU per delivery.") var serverPID: Int32?
        @Option(help: "Seconds subscribers may take after publishing ends to receive everything.") var drainTimeout = 120.0

        func run() async throws {
            let (publish, subscribe) = try common.templates()
            let options = FanoutOptions(
                publish: publish,
                subscribe: subscribe,
                subscribers: subscribers,
                rate: rate,
                duration: .milliseconds(Int64(duration * 1000)),
                eventSize: common.eventSize,
                stream: common.streamName,
                serverPID: serverPID,
                publishers: publishers,
                slowSubscribers: slowSubscribers,
                drainTimeout: .milliseconds(Int64(drainTimeout * 1000))
            )
            common.print(try await RewindBench.Bench.fanout(options))
        }
    }

    struct Replay: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish N events, then read them all back over SSE.",
            usage: "rewind bench replay [<options>]",
            discussion: """
                Examples:
                  rewind bench replay --events 1000000 --batch 1000
                  rewind bench replay --stream big --events 1000000 --no-preload \\
                    --subscribe-url 'http://127.0.0.1:8080/v1/streams/{stream}/events?from=earliest'

                The subscribe URL must start from the oldest event; without --subscribe-url the replay reads \
                \(Common.defaultURL)?from=earliest. Fewer events than --events, when the connection ends or nothing \
                arrives for 10 s, is an error.
                """
        )
        @OptionGroup var common: Common
        @Option(help: "Events to store and replay.") var events = 100_000
        @Option(help: "Events per preload request (NDJSON above 1; Rewind only).") var batch = 1
        @Option(help: "Connections publishing the preload.") var preloadConnections = 8
        @Flag(help: "The stream already holds the events: skip publishing.") var noPreload = false

        func run() async throws {
            let (publish, subscribes) = try common.templates(subscribeDefault: Common.defaultURL + "?from=earliest")
            guard subscribes.count == 1, let subscribe = subscribes.first else {
                throw ValidationError("replay reads over one connection: give --subscribe-url once, not \(subscribes.count) times")
            }
            guard preloadConnections >= 1 else {
                throw ValidationError("--preload-connections must be at least 1, not \(preloadConnections)")
            }
            let options = ReplayOptions(
                publish: publish,
                subscribe: subscribe,
                events: events,
                preloadBatch: batch,
                preloadConnections: preloadConnections,
                eventSize: common.eventSize,
                stream: common.streamName,
                preload: !noPreload
            )
            common.print(try await RewindBench.Bench.replay(options))
        }
    }

    struct Idle: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Hold N idle SSE connections and report server memory per connection.",
            usage: "rewind bench idle --server-pid <pid> [<options>]",
            discussion: """
                Examples:
                  rewind bench idle --connections 10000 --server-pid 1234
                  rewind bench idle --connections 1000 --hold 10 --server-pid 1234
                """
        )
        @OptionGroup var common: Common
        @Option(help: "Connections to hold.") var connections = 1000
        @Option(help: "The server's process id.") var serverPID: Int32
        @Option(help: "Seconds to hold them before measuring.") var hold = 2.0

        func run() async throws {
            let (_, subscribe) = try common.templates()
            let options = IdleOptions(
                subscribe: subscribe,
                connections: connections,
                stream: common.streamName,
                serverPID: serverPID,
                hold: .milliseconds(Int64(hold * 1000))
            )
            common.print(try await RewindBench.Bench.idle(options))
        }
    }
}
