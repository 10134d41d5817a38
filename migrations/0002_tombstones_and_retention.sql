-- Stream tombstones and the pruning horizon.
-- deleted_at: set when the stream was deleted (its events are removed; its name stays taken).
-- pruned_through: the highest id of this stream removed by retention or deletion; a cursor below it has missed
-- events, which subscribers are told with a rewind.gap signal.
ALTER TABLE streams ADD COLUMN deleted_at INTEGER;
ALTER TABLE streams ADD COLUMN pruned_through INTEGER NOT NULL DEFAULT 0;
