import ArgumentParser
import Foundation
import RewindAdmin
import RewindStore

struct Tail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Follow streams on a server over SSE, resuming after every disconnect without gap or duplicate.",
        usage: "rewind tail [--server <url>] [<options>] <streams> ...",
        discussion: """
            Prints events as they are committed. When the connection drops (a server restart, a network blip) it \
            waits the stream's retry time and reconnects after the last id it received, so nothing is missed and \
            nothing repeats. Server signals (rewind.gap, rewind.reset) and reconnects are reported on stderr. \
            Ends when the streams are deleted, or, with --no-follow, once caught up.

            Formats: text (id, type and data on one line; the default on a terminal), ndjson (one \
            {"id", "type", "data"} object per line; the default otherwise), data (the data alone, one event a line).

            Examples:
              rewind tail orders
              rewind tail 'orders.*' audit --from earliest --type order.created
              rewind tail orders --from 1200 --no-follow --format ndjson > orders.ndjson
              REWIND_SERVER=http://127.0.0.1:9000 rewind tail '*'
            """
    )

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case text, ndjson, data
    }

    @OptionGroup var server: ServerOptions

    @Argument(help: "Stream names or patterns ('orders.*'; '*' for all).")
    var streams: [String]

    @Option(help: "Where to start: earliest, latest (the default) or an event id to start after.")
    var from: String?

    @Option(name: .customLong("type"), help: "Only events of this type (repeatable).")
    var types: [String] = []

    @Flag(help: "Stop once caught up instead of following new events.")
    var noFollow = false

    @Option(help: "text, ndjson or data (default: text on a terminal, ndjson otherwise).")
    var format: Format?

    func validate() throws {
        guard !streams.isEmpty else { throw ValidationError("name at least one stream") }
        if let from, from != "earliest", from != "latest", Int64(from).map({ $0 < 0 }) ?? true {
            throw ValidationError("--from '\(from)' is not earliest, latest or an event id")
        }
    }

    func run() async throws {
        var options = TailOptions(streams: streams)
        options.types = types
        options.from = from
        options.follow = !noFollow
        let format = format ?? (Terminal.standardOutput ? .text : .ndjson)
        let table = OutputTable(columns: TailEvent.columns, rows: [])
        do {
            try await server.client().tail(options, notice: { Terminal.printError("rewind tail: \($0)") }) { event in
                switch format {
                case .ndjson: Terminal.print(table.ndjsonLine(event.cells))
                case .data: Terminal.print(event.data + "\n")
                case .text: Terminal.print("\(event.id)  \(event.type)  \(event.data.replacingOccurrences(of: "\n", with: "\\n"))\n")
                }
            }
        } catch {
            throw adminFailure(error)
        }
    }
}
