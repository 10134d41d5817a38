-- What maintenance (pruning, stream deletion) did to the log, whichever process did it, so a running server can
-- notice it with one small read, as it notices other processes' appends by reading the head.
-- Kept by triggers on `streams`, in the transaction that prunes or deletes: every writer of the file keeps it,
-- the server, `rewind prune`, an import, or anything else that updates those columns.

-- One row. generation: bumped by every change of a stream's horizon or tombstone; pruned_through: the highest id
-- removed from any stream (a server drops its window of recent events through it); deletions: the seq of the
-- last row of stream_deletions.
CREATE TABLE maintenance (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    generation     INTEGER NOT NULL,
    pruned_through INTEGER NOT NULL,
    deletions      INTEGER NOT NULL
);

-- Streams in the order they were deleted; a server closes the subscriptions covering those it has not seen yet.
CREATE TABLE stream_deletions (
    seq    INTEGER PRIMARY KEY,
    stream TEXT    NOT NULL
);

INSERT INTO stream_deletions (stream) SELECT name FROM streams WHERE deleted_at IS NOT NULL ORDER BY deleted_at, name;
INSERT INTO maintenance (id, generation, pruned_through, deletions) VALUES (
    1, 0, (SELECT coalesce(max(pruned_through), 0) FROM streams), (SELECT coalesce(max(seq), 0) FROM stream_deletions)
);

-- Appends never name these columns in their update, so the triggers cost them nothing.
CREATE TRIGGER streams_pruned AFTER UPDATE OF pruned_through ON streams
WHEN NEW.pruned_through > OLD.pruned_through
BEGIN
    UPDATE maintenance SET generation = generation + 1, pruned_through = max(pruned_through, NEW.pruned_through);
END;

CREATE TRIGGER streams_deleted AFTER UPDATE OF deleted_at ON streams
WHEN OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL
BEGIN
    INSERT INTO stream_deletions (stream) VALUES (NEW.name);
    UPDATE maintenance SET generation = generation + 1, deletions = (SELECT max(seq) FROM stream_deletions);
END;

-- An import writes streams that arrive pruned or deleted.
CREATE TRIGGER streams_arrive_pruned AFTER INSERT ON streams
WHEN NEW.pruned_through > 0 OR NEW.deleted_at IS NOT NULL
BEGIN
    INSERT INTO stream_deletions (stream) SELECT NEW.name WHERE NEW.deleted_at IS NOT NULL;
    UPDATE maintenance SET generation = generation + 1, pruned_through = max(pruned_through, NEW.pruned_through),
        deletions = (SELECT coalesce(max(seq), 0) FROM stream_deletions);
END;
