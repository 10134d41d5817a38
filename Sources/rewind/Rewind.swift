import ArgumentParser

@main
struct Rewind: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rewind",
        abstract: "A persistent event log with Server-Sent Events replay.",
        subcommands: [Serve.self, Token.self, Bench.self]
    )
}
