-- The PostgreSQL event log: the same tables as the SQLite log's migrations 0001-0003, in one step.
-- Text columns use the "C" collation so names compare and sort by their bytes, as in SQLite.

-- The one row that orders every commit (PostgresEventLog's doc comment says why): the highest id ever given out,
-- the hash the next event chains from, and the newest commit time. Each group commit locks it (SELECT ... FOR
-- UPDATE) and moves all three before COMMIT, so ids become visible in the order they were given.
CREATE TABLE log_head (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    head      bigint  NOT NULL,
    chain_tip bytea   NOT NULL,
    last_time bigint  NOT NULL
);
INSERT INTO log_head (head, chain_tip, last_time) VALUES (0, decode(repeat('00', 32), 'hex'), 0);

-- One table of events sharing one id space across all streams. data holds the event's UTF-8 bytes: PostgreSQL's
-- text cannot hold U+0000, which an event's data may contain.
CREATE TABLE events (
    id     bigint  PRIMARY KEY,
    stream text    COLLATE "C" NOT NULL,
    type   text    COLLATE "C" NOT NULL,
    data   bytea   NOT NULL,
    json   boolean NOT NULL DEFAULT false, -- true when data is JSON text published as a JSON value
    time   bigint  NOT NULL,               -- commit time, microseconds since the Unix epoch (UTC), non-decreasing with id
    key    text    COLLATE "C",            -- idempotency key of the publishing request
    hash   bytea   NOT NULL                -- audit chain (ChainHash.swift)
);

-- Per-stream reads, replays and pruning walk this index in id order.
CREATE INDEX events_by_stream ON events (stream, id);

-- One row per stream, kept by the writer in the same transaction as the events.
-- deleted_at: set when the stream was deleted (its events are removed; its name stays taken).
-- pruned_through: the highest id of this stream removed by retention or deletion.
CREATE TABLE streams (
    name           text   COLLATE "C" PRIMARY KEY,
    count          bigint NOT NULL,
    first_id       bigint NOT NULL,
    last_id        bigint NOT NULL,
    last_time      bigint NOT NULL,
    bytes          bigint NOT NULL,
    deleted_at     bigint,
    pruned_through bigint NOT NULL DEFAULT 0
);

-- Results of requests that carried an Idempotency-Key, per stream, for the dedupe window.
CREATE TABLE idempotency_keys (
    stream   text   COLLATE "C" NOT NULL,
    key      text   COLLATE "C" NOT NULL,
    first_id bigint NOT NULL,
    last_id  bigint NOT NULL,
    time     bigint NOT NULL,
    PRIMARY KEY (stream, key)
);
CREATE INDEX idempotency_keys_by_time ON idempotency_keys (time);

-- Where events were removed (pruning, stream deletion): for each run of removed events, the last one's id and
-- hash, which is what the next event, whichever stream it belongs to, chains from.
CREATE TABLE chain_checkpoints (
    id   bigint PRIMARY KEY,
    hash bytea  NOT NULL
);

-- Facts about the log kept for the admin commands: the retention policy last applied ('retention').
CREATE TABLE log_settings (
    key   text COLLATE "C" PRIMARY KEY,
    value text NOT NULL
);
