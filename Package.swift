// swift-tools-version:6.1
import PackageDescription

/// Language features every target builds with (see STYLE.md); set once here.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

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
            dependencies: [
                "RewindCore",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["EmbedMigrations"]
        ),
        // The PostgreSQL log: the same API as the SQLite log, for several Rewind nodes sharing one database.
        .target(
            name: "RewindPostgres",
            dependencies: [
                "RewindCore",
                "RewindStore",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["EmbedMigrations"]
        ),
        // The HTTP API over the store.
        .target(
            name: "RewindServer",
            dependencies: [
                "RewindCore",
                "RewindStore",
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "DequeModule", package: "swift-collections"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdHTTP2", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings,
            plugins: ["EmbedConsole"]
        ),
        // Load generator for `rewind bench`: HTTP publishers and SSE subscribers on raw NIO channels, so the client
        // costs little next to the server it measures; works against any server by URL templates (Nchan too).
        .target(
            name: "RewindBench",
            dependencies: [
                .product(name: "Histogram", package: "hdrhistogram-swift"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The admin commands behind the CLI, on either backend through `LogCatalog` (no SQL here): output formats,
        // verification, export and import, and the HTTP clients of `tail` and `publish`.
        .target(
            name: "RewindAdmin",
            dependencies: [
                "RewindCore",
                "RewindPostgres",
                "RewindStore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `rewind` command: argument parsing and wiring only.
        .executableTarget(
            name: "rewind",
            dependencies: [
                "RewindAdmin",
                "RewindBench",
                "RewindPostgres",
                "RewindServer",
                "RewindStore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Configuration", package: "swift-configuration"),
                .product(name: "Logging", package: "swift-log"),
            ],
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
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
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
            dependencies: [
                "RewindCore",
                "RewindPostgres",
                "RewindStore",
                "RewindTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RewindPostgresTests",
            dependencies: [
                "RewindCore",
                "RewindPostgres",
                "RewindStore",
                "RewindTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RewindAdminTests",
            dependencies: [
                "RewindAdmin",
                "RewindCore",
                "RewindPostgres",
                "RewindServer",
                "RewindStore",
                "RewindTestSupport",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "RewindServerTests",
            dependencies: [
                "RewindCore",
                "RewindPostgres",
                "RewindServer",
                "RewindStore",
                "RewindTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            exclude: ["Keys"],
            swiftSettings: swiftSettings
        ),
    ]
)
