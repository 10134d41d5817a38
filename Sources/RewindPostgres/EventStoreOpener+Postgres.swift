public import RewindStore

extension EventStoreOpener {
    /// The PostgreSQL log in the database the configuration names; its description carries no password.
    public static func postgres(_ configuration: PostgresStoreConfiguration) -> EventStoreOpener {
        EventStoreOpener(configuration.description) { logger, metrics in
            try await PostgresEventLog.open(configuration: configuration, logger: logger, metrics: metrics)
        }
    }
}
