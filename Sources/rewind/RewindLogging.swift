import Logging
import RewindServer

/// `--log-format`: human-readable lines or JSON lines, with the same keys.
enum LogFormat: String, CaseIterable {
    case text, json
}

enum RewindLogging {
    /// Bootstraps swift-log once for `serve`: every line carries `client.address` while a request is handled.
    static func start(level: Logger.Level, format: LogFormat) -> Logger {
        let lines: LogLineHandler.Format = format == .json ? .json : .text
        LoggingSystem.bootstrap(
            { label, provider in LogLineHandler(label: label, format: lines, metadataProvider: provider) },
            metadataProvider: .requestOrigin
        )
        var logger = Logger(label: "rewind")
        logger.logLevel = level
        return logger
    }
}
