import Foundation
import PackagePlugin

/// Embeds the web console's files (`console/`, every file in every folder below it) and `openapi.yaml` into the
/// target as Swift source, with their content types, so `GET /` and `GET /openapi.yaml` are served from the binary.
///
/// Inputs as for `EmbedMigrations`: the folders and each file, and the embedder lists the folder when it runs.
@main
struct EmbedConsole: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) async throws -> [Command] {
        let root = context.package.directoryURL.appending(path: "console")
        var inputs = [root]
        let walk = FileManager.default.enumerator(
            at: root,
            includingPropertiesForKeys: [.isRegularFileKey, .isDirectoryKey],
            options: [.skipsHiddenFiles]
        )
        while let url = walk?.nextObject() as? URL {
            let values = try url.resourceValues(forKeys: [.isRegularFileKey, .isDirectoryKey])
            if values.isRegularFile == true || values.isDirectory == true { inputs.append(url) }
        }
        // The API's description is served from the binary too, at /openapi.yaml.
        let description = context.package.directoryURL.appending(path: "openapi.yaml")
        inputs.append(description)
        let output = context.pluginWorkDirectoryURL.appending(path: "ConsoleAsset+Embedded.swift")
        return [
            .buildCommand(
                displayName: "Embedding the console",
                executable: try context.tool(named: "RewindEmbedder").url,
                arguments: ["assets", output.path, root.path, description.path],
                inputFiles: inputs,
                outputFiles: [output]
            )
        ]
    }
}
