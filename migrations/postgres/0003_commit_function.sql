-- A group commit in one call: rewind_commit locks the head row, looks up idempotency keys and tombstones, gives out
-- ids, chains the audit hashes, writes events, keys, stream counters and the head, and notifies the other nodes,
-- all on the server. A commit used to be five round trips (the lock, the tombstones, the keys, the writes, then
-- COMMIT) with the hashes computed by Rewind between them; now it is this one statement between BEGIN and COMMIT.
-- Tables are unchanged, so a log keeps its events and its chain across the upgrade.
--
-- Arguments, one element per request: the stream, the idempotency key (read only where keyed is true), the number
-- of events; then one element per event of all requests, in request order: type, data (UTF-8 bytes), json.
-- proposed_time is the caller's clock: the commit time is the later of it and the last commit's. The notification
-- goes to channel with payload 'HEAD TIME SENDER', as CommitListener reads it.
--
-- Returns the head before the commit, the commit time, and per request: kind (0 written, 1 replayed from its
-- idempotency key, 2 refused because its stream is deleted), the first and last id (written or replayed, 0 when
-- refused) and a time (the commit time, the replayed request's time, or when the stream was deleted).
--
-- The audit chain is ChainHash.swift's, byte for byte: sha256 over the previous hash, the id, the stream's UTF-8
-- length and bytes, the type's, the commit time and the data's, every integer 8 bytes big-endian (int8send).
--
-- The caller may send the hashes already chained (precomputed_hashes, one per event), from the head and tip it
-- expects (its own last commit, usually): they are used only while they are certainly right, that is when the head
-- row holds expected_head and expected_tip, the commit time is proposed_time, and every request so far was written
-- (a replayed or refused request shifts the ids after it). From the first that fails, the hashes are chained here.
-- The result carries the new tip for the caller's next commit.
--
-- Every statement in a volatile PL/pgSQL function takes a new snapshot under READ COMMITTED, so the reads after
-- the head row's lock see everything committed by the lock's previous holder (a deletion included).
CREATE FUNCTION rewind_commit(
    proposed_time bigint,
    idempotency_window bigint,
    request_streams text[],
    request_keys text[],
    request_keyed boolean[],
    request_counts integer[],
    event_types text[],
    event_datas bytea[],
    event_jsons boolean[],
    channel text,
    sender text,
    expected_head bigint,
    expected_tip bytea,
    precomputed_hashes bytea[],
    OUT previous_head bigint,
    OUT commit_time bigint,
    OUT kinds integer[],
    OUT first_ids bigint[],
    OUT last_ids bigint[],
    OUT times bigint[],
    OUT new_tip bytea
) LANGUAGE plpgsql AS $$
DECLARE
    v_head bigint;
    v_tip bytea;
    v_last_time bigint;
    v_time_bytes bytea;
    v_requests integer := coalesce(array_length(request_streams, 1), 0);
    v_replay_first bigint[];
    v_replay_last bigint[];
    v_replay_time bigint[];
    v_deleted_at bigint[];
    v_first_of_key integer[];
    v_id bigint;
    v_first bigint;
    v_position integer := 0;
    v_stream bytea;
    v_type bytea;
    v_wrote boolean := false;
    v_precomputed boolean;
    -- One element per event, NULL for events of requests not written: filled to full length up front, since a
    -- subscripted assignment to a NULL array starts the array at that subscript.
    v_events integer := coalesce(array_length(event_types, 1), 0);
    v_event_ids bigint[] := array_fill(NULL::bigint, ARRAY[v_events]);
    v_event_streams text[] := array_fill(NULL::text, ARRAY[v_events]);
    v_event_keys text[] := array_fill(NULL::text, ARRAY[v_events]);
    v_event_hashes bytea[] := array_fill(NULL::bytea, ARRAY[v_events]);
    v_key_streams text[] := '{}';
    v_key_keys text[] := '{}';
    v_key_firsts bigint[] := '{}';
    v_key_lasts bigint[] := '{}';
BEGIN
    SELECT h.head, h.chain_tip, h.last_time INTO v_head, v_tip, v_last_time FROM log_head AS h FOR UPDATE;
    previous_head := v_head;
    commit_time := greatest(proposed_time, v_last_time);
    v_time_bytes := int8send(commit_time);
    new_tip := v_tip;
    v_precomputed := v_head = expected_head AND v_tip = expected_tip AND commit_time = proposed_time
        AND coalesce(array_length(precomputed_hashes, 1), 0) = v_events;

    -- Per request: its key's remembered result within the window, its stream's tombstone, and the first request
    -- of this batch with the same stream and key (a later one replays what that one gets).
    SELECT array_agg(k.first_id ORDER BY r.ord), array_agg(k.last_id ORDER BY r.ord), array_agg(k.time ORDER BY r.ord),
        array_agg(s.deleted_at ORDER BY r.ord), array_agg(r.first_of_key ORDER BY r.ord)
    INTO v_replay_first, v_replay_last, v_replay_time, v_deleted_at, v_first_of_key
    FROM (
        SELECT q.ord, q.stream, q.key,
            CASE WHEN q.key IS NOT NULL THEN min(q.ord) OVER (PARTITION BY q.stream, q.key) END AS first_of_key
        FROM (
            SELECT u.ord::integer AS ord, u.stream, CASE WHEN u.keyed THEN u.key END AS key
            FROM unnest(request_streams, request_keys, request_keyed) WITH ORDINALITY AS u(stream, key, keyed, ord)
        ) AS q
    ) AS r
    LEFT JOIN idempotency_keys AS k ON k.stream = r.stream AND k.key = r.key AND k.time >= commit_time - idempotency_window
    LEFT JOIN streams AS s ON s.name = r.stream AND s.deleted_at IS NOT NULL;

    v_id := v_head;
    FOR r IN 1..v_requests LOOP
        IF request_counts[r] > 0 AND (v_replay_first[r] IS NOT NULL OR v_deleted_at[r] IS NOT NULL
            OR (v_first_of_key[r] IS NOT NULL AND v_first_of_key[r] <> r))
        THEN
            v_precomputed := false;
        END IF;
        IF v_replay_first[r] IS NOT NULL THEN
            kinds[r] := 1;
            first_ids[r] := v_replay_first[r];
            last_ids[r] := v_replay_last[r];
            times[r] := v_replay_time[r];
        ELSIF v_deleted_at[r] IS NOT NULL THEN
            kinds[r] := 2;
            first_ids[r] := 0;
            last_ids[r] := 0;
            times[r] := v_deleted_at[r];
        ELSIF v_first_of_key[r] IS NOT NULL AND v_first_of_key[r] <> r THEN
            kinds[r] := 1;
            first_ids[r] := first_ids[v_first_of_key[r]];
            last_ids[r] := last_ids[v_first_of_key[r]];
            times[r] := commit_time;
        ELSE
            v_stream := convert_to(request_streams[r], 'UTF8');
            v_stream := int8send(octet_length(v_stream)::bigint) || v_stream;
            v_first := 0;
            FOR e IN v_position + 1..v_position + request_counts[r] LOOP
                v_id := v_id + 1;
                IF v_first = 0 THEN v_first := v_id; END IF;
                IF v_precomputed THEN
                    v_tip := precomputed_hashes[e];
                ELSE
                    v_type := convert_to(event_types[e], 'UTF8');
                    v_tip := sha256(v_tip || int8send(v_id) || v_stream || int8send(octet_length(v_type)::bigint) || v_type
                        || v_time_bytes || int8send(octet_length(event_datas[e])::bigint) || event_datas[e]);
                END IF;
                v_event_ids[e] := v_id;
                v_event_streams[e] := request_streams[r];
                v_event_keys[e] := CASE WHEN request_keyed[r] THEN request_keys[r] END;
                v_event_hashes[e] := v_tip;
            END LOOP;
            kinds[r] := 0;
            first_ids[r] := v_first;
            last_ids[r] := CASE WHEN v_first = 0 THEN 0 ELSE v_id END;
            times[r] := commit_time;
            v_wrote := true;
            IF v_first_of_key[r] IS NOT NULL THEN
                v_key_streams := v_key_streams || request_streams[r];
                v_key_keys := v_key_keys || request_keys[r];
                v_key_firsts := v_key_firsts || first_ids[r];
                v_key_lasts := v_key_lasts || last_ids[r];
            END IF;
        END IF;
        v_position := v_position + request_counts[r];
    END LOOP;

    new_tip := v_tip;
    IF NOT v_wrote THEN
        RETURN;
    END IF;

    -- Events of requests not written have no id.
    INSERT INTO events (id, stream, type, data, json, time, key, hash)
    SELECT u.id, u.stream, u.type, u.data, u.json, commit_time, u.key, u.hash
    FROM unnest(v_event_ids, v_event_streams, event_types, event_datas, event_jsons, v_event_keys, v_event_hashes)
        AS u(id, stream, type, data, json, key, hash)
    WHERE u.id IS NOT NULL;

    INSERT INTO idempotency_keys AS i (stream, key, first_id, last_id, time)
    SELECT u.stream, u.key, u.first_id, u.last_id, commit_time
    FROM unnest(v_key_streams, v_key_keys, v_key_firsts, v_key_lasts) AS u(stream, key, first_id, last_id)
    ON CONFLICT (stream, key) DO UPDATE SET first_id = excluded.first_id, last_id = excluded.last_id, time = excluded.time;

    INSERT INTO streams AS s (name, count, first_id, last_id, last_time, bytes)
    SELECT u.stream, count(*), min(u.id), max(u.id), commit_time, sum(octet_length(u.data))
    FROM unnest(v_event_ids, v_event_streams, event_datas) AS u(id, stream, data)
    WHERE u.id IS NOT NULL
    GROUP BY u.stream
    ORDER BY u.stream
    ON CONFLICT (name) DO UPDATE SET count = s.count + excluded.count, last_id = excluded.last_id,
        last_time = excluded.last_time, bytes = s.bytes + excluded.bytes,
        first_id = CASE WHEN s.count = 0 THEN excluded.first_id ELSE s.first_id END;

    UPDATE log_head SET head = v_id, chain_tip = v_tip,
        last_time = CASE WHEN v_id > v_head THEN commit_time ELSE last_time END;
    PERFORM pg_notify(channel, v_id || ' ' || commit_time || ' ' || sender);
END
$$;
