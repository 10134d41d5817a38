public import RewindStore

/// `rewind prune` and `rewind import` write through the same log the server uses.
extension PostgresEventLog: LogMaintenance {}
