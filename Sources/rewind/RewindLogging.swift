import Logging
import RewindServer

/// `--log-format`: human-readable lines or JSON lines, with the same keys.
enum LogFormat: String, CaseIterable {
    case text, json
}

enum RewindLogging {
    /// Bootstraps swift-log once for `serve`: every line carries `client.address` while a request is handled.
    static func start(level: Logger.Level, format: LogFormat) -> Logger {
        switch format {
        case .text:
            LoggingSystem.bootstrap(
                { label, provider in StreamLogHandler.standardError(label: label, metadataProvider: provider) },
                metadataProvider: .requestOrigin
            )
        case .json:
            LoggingSystem.bootstrap({ label, provider in JSONLogHandler(label: label, metadataProvider: provider) }, metadataProvider: .requestOrigin)
        }
        var logger = Logger(label: "rewind")
        logger.logLevel = level
        return logger
    }
}
