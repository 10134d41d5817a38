-- The audit chain (README, "Audit chain").
-- hash: SHA-256 over the previous event's hash and this event's id, stream, type, time and data (ChainHash.swift),
-- set by the writer in commit order. Rows from before this migration are hashed when a writer next opens the log.
ALTER TABLE events ADD COLUMN hash BLOB;

-- Where events were removed (pruning, stream deletion): for each run of removed events, the last one's id and
-- hash, which is what the next event, whichever stream it belongs to, chains from. The chain is global while
-- removal is per stream, so runs can sit anywhere in it.
CREATE TABLE chain_checkpoints (
    id   INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);

-- Facts about the log kept for the admin commands: the retention policy last applied ('retention') and when.
CREATE TABLE log_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
