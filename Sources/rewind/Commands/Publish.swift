import ArgumentParser
import Foundation
import RewindAdmin
import RewindStore

struct Publish: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Publish events to a stream on a server: DATA, a file's contents, or stdin's lines.",
        usage: "rewind publish [--server <url>] [<options>] <stream> [<data>]",
        discussion: """
            With DATA, publishes one event whose data is DATA; with --file, one event whose data is the file's \
            contents. With neither, every line of stdin is one event's data, sent as NDJSON batches of --batch \
            lines, each committed atomically; --idempotency-key KEY then sends KEY-1, KEY-2, ... for the successive \
            batches. Prints the server's answer (ids and time), one JSON line per request.

            Examples:
              rewind publish orders 'order 17 created' --type order.created
              rewind publish reports --file report.json --idempotency-key report-2026-11-21
              tail -f app.log | rewind publish logs --batch 100
            """
    )

    @OptionGroup var server: ServerOptions

    @Argument(help: "The stream to publish to.")
    var stream: String

    @Argument(help: "The event's data (omit to read --file or stdin).")
    var data: String?

    @Option(help: "Publish the contents of this file as one event.")
    var file: String?

    @Option(help: "The event type (default: message).")
    var type: String?

    @Option(help: "Idempotency-Key: a retry with the same key on the same stream appends nothing.")
    var idempotencyKey: String?

    @Option(help: "Lines of stdin per request.")
    var batch = 1000

    func validate() throws {
        if data != nil, file != nil { throw ValidationError("give DATA or --file, not both") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
    }

    func run() async throws {
        do {
            let client = try server.client()
            if let data {
                let receipt = try await client.publish(stream: stream, data: data, type: type, idempotencyKey: idempotencyKey)
                Terminal.print(receipt.body + "\n")
                return
            }
            if let file {
                guard let contents = FileManager.default.contents(atPath: file) else { throw AdminError("cannot read \(file)") }
                guard let text = String(data: contents, encoding: .utf8) else { throw AdminError("\(file) is not UTF-8 text") }
                let receipt = try await client.publish(stream: stream, data: text, type: type, idempotencyKey: idempotencyKey)
                Terminal.print(receipt.body + "\n")
                return
            }
            var lines: [String] = []
            var batches = 0
            func send() async throws {
                guard !lines.isEmpty else { return }
                batches += 1
                let key = idempotencyKey.map { "\($0)-\(batches)" }
                let receipt = try await client.publish(stream: stream, lines: lines, type: type, idempotencyKey: key)
                Terminal.print(receipt.body + "\n")
                lines.removeAll(keepingCapacity: true)
            }
            while let line = readLine(strippingNewline: true) {
                lines.append(line)
                if lines.count >= batch { try await send() }
            }
            try await send()
        } catch {
            throw adminFailure(error)
        }
    }
}
