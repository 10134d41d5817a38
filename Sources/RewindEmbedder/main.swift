import Foundation

// Turns files of the package into Swift source at build time, so `rewind` carries them and runs from any directory.
//   RewindEmbedder migrations OUTPUT.swift DIRECTORY      DIRECTORY/*.sql as `Migration.embedded` (RewindStore)
//   RewindEmbedder assets OUTPUT.swift DIRECTORY [FILE…]  every file below DIRECTORY, and each FILE by its name, as
//                                                         `ConsoleAsset.embedded` (RewindServer)
// The folder is listed here, when the command runs, rather than by the plugin: SwiftPM keeps a plugin's command
// line from the last time it planned the build, which a file added to the folder does not trigger, while the
// folder itself is one of the command's inputs, so adding a file does run the command again.
let usage = """
    usage: RewindEmbedder migrations OUTPUT.swift DIRECTORY
           RewindEmbedder assets OUTPUT.swift DIRECTORY [FILE...]

    """

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("RewindEmbedder: \(message)\n".utf8))
    exit(2)
}

func fileName(_ path: String) -> String { (path as NSString).lastPathComponent }

/// A Swift raw multi-line string literal holding `text`, or nil when it cannot hold it exactly (the compiler
/// turns CR and CRLF into LF and refuses other control characters); `exact: false` takes the literal anyway,
/// which is what SQL can live with.
func rawStringLiteral(_ text: String, exact: Bool = true) -> String? {
    let plain = text.unicodeScalars.allSatisfy { $0 == "\n" || $0 == "\t" || $0.properties.generalCategory != .control }
    guard plain || !exact else { return nil }
    // Enough # that no text can close the literal or start an escape.
    var hashes = "#"
    while text.contains("\"" + hashes) || text.contains("\\" + hashes) { hashes += "#" }
    return "\(hashes)\"\"\"\n\(text)\n\"\"\"\(hashes)"
}

/// 64-bit FNV-1a, enough to tell two builds' copies of a file apart in an ETag.
func fnv1a(_ bytes: [UInt8]) -> String {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for byte in bytes {
        hash ^= UInt64(byte)
        hash = hash &* 0x0000_0100_0000_01b3
    }
    return String(hash, radix: 16)
}

/// Content types of the files the console is made of; any other extension stops the build, so a file is never
/// served with a type the browser would have to guess.
let contentTypes: [String: String] = [
    "html": "text/html; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "json": "application/json",
    "svg": "image/svg+xml",
    "png": "image/png",
    "ico": "image/x-icon",
    "txt": "text/plain; charset=utf-8",
    "yaml": "application/yaml; charset=utf-8",
]

/// The regular files below `directory` (all levels, hidden ones left out), as paths.
func files(in directory: String, recursive: Bool) throws -> [String] {
    let root = URL(fileURLWithPath: directory, isDirectory: true)
    var found: [String] = []
    if recursive {
        let walk = FileManager.default.enumerator(at: root, includingPropertiesForKeys: [.isRegularFileKey], options: [.skipsHiddenFiles])
        while let url = walk?.nextObject() as? URL {
            if try url.resourceValues(forKeys: [.isRegularFileKey]).isRegularFile == true { found.append(url.path) }
        }
    } else {
        found = try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasPrefix(".") }.map { directory + "/" + $0 }
    }
    return found.sorted()
}

func migrationsSource(_ files: [String]) throws -> String {
    var source = """
        // Generated from migrations/*.sql at build time. Do not edit.

        extension Migration {
            /// The migrations shipped with this build, in file-name order.
            static let embedded: [Migration] = [

        """
    for path in files.sorted(by: { fileName($0) < fileName($1) }) {
        let name = (fileName(path) as NSString).deletingPathExtension
        let sql = try String(contentsOfFile: path, encoding: .utf8)
        source += "        Migration(name: \(String(reflecting: name)), sql: \(rawStringLiteral(sql, exact: false)!)),\n"
    }
    return source + "    ]\n}\n"
}

func assetsSource(root: String, files: [String], extra: [String]) throws -> String {
    let prefix = root.hasSuffix("/") ? root : root + "/"
    var named: [(name: String, path: String)] = try files.sorted().map { path in
        guard path.hasPrefix(prefix) else { fail("\(path) is not under \(root)") }
        return (String(path.dropFirst(prefix.count)), path)
    }
    named += extra.map { (fileName($0), $0) }
    var source = """
        // Generated from the console's files at build time. Do not edit.

        extension ConsoleAsset {
            /// The console's files shipped with this build, by path under the console folder.
            static let embedded: [ConsoleAsset] = [

        """
    for (name, path) in named {
        let fileExtension = (name as NSString).pathExtension.lowercased()
        guard let contentType = contentTypes[fileExtension] else {
            fail("\(path): no content type known for .\(fileExtension); add it to RewindEmbedder's table")
        }
        let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        let head = "path: \(String(reflecting: name)), contentType: \(String(reflecting: contentType)), etag: \"\\\"\(fnv1a(bytes))\\\"\""
        if let text = String(validating: bytes, as: UTF8.self), let literal = rawStringLiteral(text) {
            source += "        ConsoleAsset(\(head), text: \(literal)),\n"
        } else {
            source += "        ConsoleAsset(\(head), bytes: [\(bytes.map { String($0) }.joined(separator: ","))]),\n"
        }
    }
    return source + "    ]\n}\n"
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 3, arguments.count == 3 || arguments[0] == "assets" else { fail(usage) }
let (output, directory) = (arguments[1], arguments[2])
let source: String
switch arguments[0] {
case "migrations":
    source = try migrationsSource(try files(in: directory, recursive: false).filter { $0.hasSuffix(".sql") })
case "assets":
    source = try assetsSource(root: directory, files: try files(in: directory, recursive: true), extra: Array(arguments.dropFirst(3)))
default:
    fail(usage)
}
// Rewritten only when it changes, so the target is not compiled again for nothing.
if (try? String(contentsOfFile: output, encoding: .utf8)) != source {
    try source.write(toFile: output, atomically: true, encoding: .utf8)
}
