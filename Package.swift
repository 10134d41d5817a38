// swift-tools-version:6.1
import PackageDescription

/// Language features every target builds with (see STYLE.md); set once here.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

/// The package each product a target imports comes from, so a target names its products alone.
let productPackages: [String: String] = [
    "ArgumentParser": "swift-argument-parser",
    "AsyncHTTPClient": "async-http-client",
    "Configuration": "swift-configuration",
    "CoreMetrics": "swift-metrics",
    "Crypto": "swift-crypto",
    "DequeModule": "swift-collections",
    "GRDB": "GRDB.swift",
    "GRDBSQLite": "GRDB.swift",
    "Histogram": "hdrhistogram-swift",
    "HTTPTypes": "swift-http-types",
    "Hummingbird": "hummingbird",
    "HummingbirdCore": "hummingbird",
    "HummingbirdHTTP2": "hummingbird",
    "HummingbirdTesting": "hummingbird",
    "JWTKit": "jwt-kit",
    "Logging": "swift-log",
    "NIOCore": "swift-nio",
    "NIOHTTP1": "swift-nio",
    "NIOHTTP2": "swift-nio-http2",
    "NIOHTTPTypes": "swift-nio-extras",
    "NIOPosix": "swift-nio",
    "NIOSSL": "swift-nio-ssl",
    "PostgresNIO": "postgres-nio",
    "Prometheus": "swift-prometheus",
    "ServiceLifecycle": "swift-service-lifecycle",
    "UnixSignals": "swift-service-lifecycle",
]

/// A target's dependencies on the products it names (see `productPackages`).
func products(_ names: String...) -> [Target.Dependency] {
    names.map { name in
        guard let package = productPackages[name] else { fatalError("Package.swift: no package listed for product \(name)") }
        return .product(name: name, package: package)
    }
}

let package = Package(
    name: "rewind",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "rewind", targets: ["rewind"])
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.1.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.8.0"),
        // SHA-256 for the audit chain.
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        // The HTTP client of `rewind tail` and `rewind publish`; the tests use it to stream SSE responses.
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        // The PostgreSQL backend's driver: the wire protocol in Swift on NIO, no libpq.
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        // TLS and HTTP/2 for `rewind serve --tls-cert` (through HummingbirdHTTP2).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        // The HTTP parts Hummingbird's channels carry, which live subscribers write to their channel directly.
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        // `rewind serve` options from the environment and a YAML file (the YAML trait brings Yams).
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: ["YAML"]),
    ],
    targets: [
        // Pure types and encodings: names, events, SSE frames, publish bodies. No I/O.
        .target(
            name: "RewindCore",
            swiftSettings: swiftSettings
        ),
        // The SQLite log: migrations, the group-committing writer, range reads, commit notifications.
        .target(
            name: "RewindStore",
            dependencies: ["RewindCore"] + products("CoreMetrics", "Crypto", "GRDB", "GRDBSQLite", "Logging", "ServiceLifecycle"),
            swiftSettings: swiftSettings,
            plugins: ["EmbedMigrations"]
        ),
        // The PostgreSQL log: the same API as the SQLite log, for several Rewind nodes sharing one database.
        .target(
            name: "RewindPostgres",
            dependencies: ["RewindCore", "RewindStore"] + products("CoreMetrics", "Logging", "PostgresNIO", "ServiceLifecycle"),
            swiftSettings: swiftSettings,
            plugins: ["EmbedMigrations"]
        ),
        // The HTTP API over the store.
        .target(
            name: "RewindServer",
            dependencies: ["RewindCore", "RewindStore"]
                + products(
                    "CoreMetrics",
                    "DequeModule",
                    "HTTPTypes",
                    "Hummingbird",
                    "HummingbirdCore",
                    "HummingbirdHTTP2",
                    "JWTKit",
                    "Logging",
                    "NIOCore",
                    "NIOHTTP1",
                    "NIOHTTP2",
                    "NIOHTTPTypes",
                    "NIOSSL",
                    "Prometheus",
                    "ServiceLifecycle",
                    "UnixSignals"
                ),
            swiftSettings: swiftSettings,
            plugins: ["EmbedConsole"]
        ),
        // Load generator for `rewind bench`: HTTP publishers and SSE subscribers on raw NIO channels, so the client
        // costs little next to the server it measures; works against any server by URL templates (Nchan too).
        .target(
            name: "RewindBench",
            dependencies: products("Histogram", "NIOCore", "NIOHTTP1", "NIOPosix"),
            swiftSettings: swiftSettings
        ),
        // The admin commands behind the CLI, on either backend through `LogCatalog` (no SQL here): output formats,
        // verification, export and import, and the HTTP clients of `tail` and `publish`.
        .target(
            name: "RewindAdmin",
            dependencies: ["RewindCore", "RewindPostgres", "RewindStore"] + products("AsyncHTTPClient", "Logging", "NIOCore", "NIOHTTP1"),
            swiftSettings: swiftSettings
        ),
        // The `rewind` command: argument parsing and wiring only.
        .executableTarget(
            name: "rewind",
            dependencies: ["RewindAdmin", "RewindBench", "RewindPostgres", "RewindServer", "RewindStore"]
                + products("ArgumentParser", "Configuration", "Logging"),
            swiftSettings: swiftSettings
        ),
        // Build tool: turns migrations/*.sql and the console's files into Swift source so the binary carries them.
        .executableTarget(
            name: "RewindEmbedder",
            swiftSettings: swiftSettings
        ),
        .plugin(
            name: "EmbedMigrations",
            capability: .buildTool(),
            dependencies: ["RewindEmbedder"]
        ),
        .plugin(
            name: "EmbedConsole",
            capability: .buildTool(),
            dependencies: ["RewindEmbedder"]
        ),
        // What the test targets share: the backends a parameterized test runs on, and the PostgreSQL test cluster.
        .target(
            name: "RewindTestSupport",
            dependencies: products("Logging", "PostgresNIO"),
            path: "Tests/RewindTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RewindCoreTests",
            dependencies: ["RewindCore", "RewindTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RewindStoreTests",
            dependencies: ["RewindCore", "RewindPostgres", "RewindStore", "RewindTestSupport"]
                + products("GRDB", "Logging", "PostgresNIO", "ServiceLifecycle"),
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RewindPostgresTests",
            dependencies: ["RewindCore", "RewindPostgres", "RewindStore", "RewindTestSupport"]
                + products("Logging", "PostgresNIO", "ServiceLifecycle"),
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RewindAdminTests",
            dependencies: ["RewindAdmin", "RewindCore", "RewindPostgres", "RewindServer", "RewindStore", "RewindTestSupport"]
                + products("GRDB", "Hummingbird", "HummingbirdTesting", "Logging", "ServiceLifecycle"),
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RewindServerTests",
            dependencies: ["RewindCore", "RewindPostgres", "RewindServer", "RewindStore", "RewindTestSupport"]
                + products(
                    "AsyncHTTPClient",
                    "GRDB",
                    "HTTPTypes",
                    "Hummingbird",
                    "HummingbirdTesting",
                    "Logging",
                    "NIOCore",
                    "NIOHTTP1",
                    "PostgresNIO"
                ),
            exclude: ["Keys"],
            swiftSettings: swiftSettings
        ),
    ]
)
