import Foundation

// Writes a Swift file holding every migration's SQL, so `rewind` carries its schema and runs from any directory.
// Usage: RewindMigrationEmbedder OUTPUT.swift FILE.sql...
let arguments = CommandLine.arguments.dropFirst()
guard let output = arguments.first else {
    FileHandle.standardError.write(Data("usage: RewindMigrationEmbedder OUTPUT.swift FILE.sql...\n".utf8))
    exit(2)
}
var source = """
    // Generated from migrations/*.sql at build time. Do not edit.

    extension Migration {
        /// The migrations shipped with this build, in file-name order.
        static let embedded: [Migration] = [

    """
for path in arguments.dropFirst().sorted(by: { ($0 as NSString).lastPathComponent < ($1 as NSString).lastPathComponent }) {
    let name = ((path as NSString).lastPathComponent as NSString).deletingPathExtension
    let sql = try String(contentsOfFile: path, encoding: .utf8)
    // A raw string with enough # that no SQL text can close it.
    var hashes = "#"
    while sql.contains("\"" + hashes) { hashes += "#" }
    source += "        Migration(name: \(String(reflecting: name)), sql: \(hashes)\"\"\"\n\(sql)\n\"\"\"\(hashes)),\n"
}
source += "    ]\n}\n"
try source.write(toFile: output, atomically: true, encoding: .utf8)
