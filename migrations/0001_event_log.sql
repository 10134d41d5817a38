-- The event log: one table of events sharing one id space across all streams.
-- AUTOINCREMENT keeps ids from ever being reused, also after the newest events are deleted.
CREATE TABLE events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    stream TEXT    NOT NULL,
    type   TEXT    NOT NULL,
    data   TEXT    NOT NULL,
    json   INTEGER NOT NULL DEFAULT 0,   -- 1 when data is JSON text published as a JSON value
    time   INTEGER NOT NULL,             -- commit time, microseconds since the Unix epoch (UTC), non-decreasing with id
    key    TEXT                          -- idempotency key of the publishing request
);

-- Per-stream reads and replays walk this index in id order.
CREATE INDEX events_by_stream ON events (stream, id);

-- One row per stream, kept by the writer in the same transaction as the events, so listing streams costs
-- nothing however long the log grows.
CREATE TABLE streams (
    name      TEXT    PRIMARY KEY,
    count     INTEGER NOT NULL,
    first_id  INTEGER NOT NULL,
    last_id   INTEGER NOT NULL,
    last_time INTEGER NOT NULL,
    bytes     INTEGER NOT NULL
) WITHOUT ROWID;

-- Results of requests that carried an Idempotency-Key, per stream, for the dedupe window.
CREATE TABLE idempotency_keys (
    stream   TEXT    NOT NULL,
    key      TEXT    NOT NULL,
    first_id INTEGER NOT NULL,
    last_id  INTEGER NOT NULL,
    time     INTEGER NOT NULL,
    PRIMARY KEY (stream, key)
) WITHOUT ROWID;
