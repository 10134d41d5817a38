-- The group commit of migration 0003 without its loop over events in the common case. 0003 walked every event in
-- PL/pgSQL to give it an id, its request's stream and key, and its hash, even when every request was written and
-- the hashes came chained from Rewind: a few microseconds an event, as much again as inserting the rows, and all
-- of it while the head row is locked. This version takes each event's stream and key from the caller as arrays
-- beside its type and data, and the bytes of each request, so:
--   * when every request is written and the hashes sent are right (the usual batch), the events go in with one
--     INSERT from the arrays, id = previous head + position; nothing is done per event in PL/pgSQL;
--   * otherwise (a request replayed from its key, repeated in the batch, refused for a deleted stream, or another
--     node committed since this one's last commit) the loop of 0003 gives the ids and chains the hashes, as before;
--   * the per-stream counters come from the requests, not from the events.
-- Results, notification and chain are those of 0003, byte for byte; 0003's function stays (an overload with
-- fewer arguments) so that nodes of the previous build keep committing during a rolling upgrade.
--
-- New arguments: request_bytes (the UTF-8 bytes of each request's event data, summed), event_streams and
-- event_keys (per event, its request's stream, and its request's key or '' when unkeyed: a key is never empty).
CREATE FUNCTION rewind_commit(
    proposed_time bigint,
    idempotency_window bigint,
    request_streams text[],
    request_keys text[],
    request_keyed boolean[],
    request_counts integer[],
    request_bytes bigint[],
    event_streams text[],
    event_keys text[],
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
    v_events integer := coalesce(array_length(event_types, 1), 0);
    v_replay_first bigint[];
    v_replay_last bigint[];
    v_replay_time bigint[];
    v_deleted_at bigint[];
    v_first_of_key integer[];
    v_id bigint;
    v_position integer := 0;
    v_stream bytea;
    v_type bytea;
    v_wrote boolean := false;
    v_all_written boolean := true;
    v_precomputed boolean;
    v_event_ids bigint[];
    v_event_hashes bytea[];
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

    -- Per request, what becomes of it and its ids: a loop over requests, not events.
    v_id := v_head;
    FOR r IN 1..v_requests LOOP
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
            kinds[r] := 0;
            first_ids[r] := CASE WHEN request_counts[r] = 0 THEN 0 ELSE v_id + 1 END;
            v_id := v_id + request_counts[r];
            last_ids[r] := CASE WHEN request_counts[r] = 0 THEN 0 ELSE v_id END;
            times[r] := commit_time;
            v_wrote := true;
            IF v_first_of_key[r] IS NOT NULL THEN
                v_key_streams := v_key_streams || request_streams[r];
                v_key_keys := v_key_keys || request_keys[r];
                v_key_firsts := v_key_firsts || first_ids[r];
                v_key_lasts := v_key_lasts || last_ids[r];
            END IF;
        END IF;
        IF kinds[r] <> 0 AND request_counts[r] > 0 THEN
            v_all_written := false;
        END IF;
    END LOOP;

    IF NOT v_wrote THEN
        RETURN;
    END IF;

    IF v_all_written AND v_precomputed THEN
        -- The usual batch: every event is written, in order, with the hash Rewind chained for it.
        INSERT INTO events (id, stream, type, data, json, time, key, hash)
        SELECT v_head + u.ord, u.stream, u.type, u.data, u.json, commit_time, nullif(u.key, ''), u.hash
        FROM unnest(event_streams, event_types, event_datas, event_jsons, event_keys, precomputed_hashes)
            WITH ORDINALITY AS u(stream, type, data, json, key, hash, ord);
        IF v_events > 0 THEN
            v_tip := precomputed_hashes[v_events];
        END IF;
    ELSE
        -- Ids skip the events of requests not written; the chain is computed here from the first event on unless
        -- the hashes sent are still right (0003's rule: from the first request not written they are not).
        v_event_ids := array_fill(NULL::bigint, ARRAY[v_events]);
        v_event_hashes := array_fill(NULL::bytea, ARRAY[v_events]);
        v_id := v_head;
        FOR r IN 1..v_requests LOOP
            IF kinds[r] <> 0 AND request_counts[r] > 0 THEN
                v_precomputed := false;
            END IF;
            IF kinds[r] = 0 THEN
                v_stream := convert_to(request_streams[r], 'UTF8');
                v_stream := int8send(octet_length(v_stream)::bigint) || v_stream;
                FOR e IN v_position + 1..v_position + request_counts[r] LOOP
                    v_id := v_id + 1;
                    IF v_precomputed THEN
                        v_tip := precomputed_hashes[e];
                    ELSE
                        v_type := convert_to(event_types[e], 'UTF8');
                        v_tip := sha256(v_tip || int8send(v_id) || v_stream || int8send(octet_length(v_type)::bigint)
                            || v_type || v_time_bytes || int8send(octet_length(event_datas[e])::bigint) || event_datas[e]);
                    END IF;
                    v_event_ids[e] := v_id;
                    v_event_hashes[e] := v_tip;
                END LOOP;
            END IF;
            v_position := v_position + request_counts[r];
        END LOOP;

        -- Events of requests not written have no id.
        INSERT INTO events (id, stream, type, data, json, time, key, hash)
        SELECT u.id, u.stream, u.type, u.data, u.json, commit_time, nullif(u.key, ''), u.hash
        FROM unnest(v_event_ids, event_streams, event_types, event_datas, event_jsons, event_keys, v_event_hashes)
            AS u(id, stream, type, data, json, key, hash)
        WHERE u.id IS NOT NULL;
    END IF;
    new_tip := v_tip;

    INSERT INTO idempotency_keys AS i (stream, key, first_id, last_id, time)
    SELECT u.stream, u.key, u.first_id, u.last_id, commit_time
    FROM unnest(v_key_streams, v_key_keys, v_key_firsts, v_key_lasts) AS u(stream, key, first_id, last_id)
    ON CONFLICT (stream, key) DO UPDATE SET first_id = excluded.first_id, last_id = excluded.last_id, time = excluded.time;

    INSERT INTO streams AS s (name, count, first_id, last_id, last_time, bytes)
    SELECT u.stream, sum(u.count), min(u.first_id), max(u.last_id), commit_time, sum(u.bytes)
    FROM unnest(request_streams, request_counts, request_bytes, kinds, first_ids, last_ids)
        AS u(stream, count, bytes, kind, first_id, last_id)
    WHERE u.kind = 0 AND u.count > 0
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
