import Foundation
import PackagePlugin

/// Embeds the web console's files (`console/`, every file in every folder below it) into the target as Swift source,
/// with their content types, so `GET /` is served from the binary. The folder is listed on every build.
@main
struct EmbedConsole: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) async throws -> [Command] {
        let root = context.package.directoryURL.appending(path: "console")
        var files: [URL] = []
        let enumerator = FileManager.default.enumerator(
            at: root,
            includingPropertiesForKeys: [.isRegularFileKey],
            options: [.skipsHiddenFiles]
        )
        while let url = enumerator?.nextObject() as? URL {
            if try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true { files.append(url) }
        }
        files.sort { $0.path < $1.path }
        let output = context.pluginWorkDirectoryURL.appending(path: "ConsoleAsset+Embedded.swift")
        return [
            .buildCommand(
                displayName: "Embedding \(files.count) console files",
                executable: try context.tool(named: "RewindEmbedder").url,
                arguments: ["assets", output.path, root.path] + files.map(\.path),
                inputFiles: files,
                outputFiles: [output]
            )
        ]
    }
}
