-- What maintenance (pruning, stream deletion) did to the log, whichever process did it, so a running server can
-- notice it with one small read, as it notices other nodes' appends by reading the head: SQLite's migration 0004.
-- Kept by a trigger on `streams`, in the transaction that prunes or deletes: every writer keeps it, a server,
-- `rewind prune`, an import, or anything else that updates those columns.

-- One row. generation: bumped by every change of a stream's horizon or tombstone; pruned_through: the highest id
-- removed from any stream (a server drops its window of recent events through it); deletions: the seq of the
-- last row of stream_deletions.
CREATE TABLE maintenance (
    only_row       boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    generation     bigint  NOT NULL,
    pruned_through bigint  NOT NULL,
    deletions      bigint  NOT NULL
);

-- Streams in the order they were deleted; a server closes the subscriptions covering those it has not seen yet.
-- seq is the previous one plus one, not a sequence: deletions run under the log_head row lock, so seqs become
-- visible in the order they were given, and a server reading "seq > what I saw" never skips one.
CREATE TABLE stream_deletions (
    seq    bigint PRIMARY KEY,
    stream text   COLLATE "C" NOT NULL
);

INSERT INTO stream_deletions (seq, stream)
SELECT row_number() OVER (ORDER BY deleted_at, name), name FROM streams WHERE deleted_at IS NOT NULL;
INSERT INTO maintenance (generation, pruned_through, deletions) VALUES (
    0, (SELECT coalesce(max(pruned_through), 0) FROM streams), (SELECT coalesce(max(seq), 0) FROM stream_deletions)
);

CREATE FUNCTION rewind_record_maintenance() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.deleted_at IS NOT NULL AND (TG_OP = 'INSERT' OR OLD.deleted_at IS NULL) THEN
        INSERT INTO stream_deletions (seq, stream) SELECT coalesce(max(seq), 0) + 1, NEW.name FROM stream_deletions;
    END IF;
    UPDATE maintenance SET generation = generation + 1, pruned_through = greatest(pruned_through, NEW.pruned_through),
        deletions = (SELECT coalesce(max(seq), 0) FROM stream_deletions);
    RETURN NULL;
END
$$;

-- Appends never name these columns in their update, and the WHEN conditions are checked before the function is
-- called, so the triggers cost appends nothing.
CREATE TRIGGER streams_maintained AFTER UPDATE OF pruned_through, deleted_at ON streams FOR EACH ROW
WHEN (NEW.pruned_through > OLD.pruned_through OR (OLD.deleted_at IS NULL AND NEW.deleted_at IS NOT NULL))
EXECUTE FUNCTION rewind_record_maintenance();

-- An import writes streams that arrive pruned or deleted.
CREATE TRIGGER streams_arrive_maintained AFTER INSERT ON streams FOR EACH ROW
WHEN (NEW.pruned_through > 0 OR NEW.deleted_at IS NOT NULL)
EXECUTE FUNCTION rewind_record_maintenance();
