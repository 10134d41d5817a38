import Foundation
import PackagePlugin

/// Embeds the package's `migrations/*.sql` into the target as Swift source, so the schema ships inside the binary;
/// target `RewindPostgres` gets `migrations/postgres/*.sql` instead.
///
/// The command's inputs are the folder and each file in it, so a file added to the folder or edited runs it again;
/// the embedder lists the folder itself when it runs (SwiftPM reuses this command line until it plans the build
/// again). A file removed from the folder is still named as an input until then: any change to `Package.swift`
/// (even `touch`) makes SwiftPM plan again.
@main
struct EmbedMigrations: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) async throws -> [Command] {
        let folder = target.name == "RewindPostgres" ? "migrations/postgres" : "migrations"
        let directory = context.package.directoryURL.appending(path: folder)
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        let output = context.pluginWorkDirectoryURL.appending(path: "Migration+Embedded.swift")
        return [
            .buildCommand(
                displayName: "Embedding migrations",
                executable: try context.tool(named: "RewindEmbedder").url,
                arguments: ["migrations", output.path, directory.path],
                inputFiles: [directory] + files,
                outputFiles: [output]
            )
        ]
    }
}
