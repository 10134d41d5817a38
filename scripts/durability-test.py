#!/usr/bin/env python3
"""Durability after 201: publishers under load (single events and NDJSON batches), the server killed with SIGKILL
at a random moment, restarted on the same database. Every event that was answered 201 must be there with the same
id and data, no id may appear twice, every batch is whole or absent, and ids keep increasing after the restart.

With --postgres DIR the log lives in a new database of the throwaway cluster in DIR (`scripts/postgres-cluster.sh`,
started when it is not running), and after the kill rounds PostgreSQL itself goes away while Rewind keeps running:
stopped with `pg_ctl -m immediate` (a crash) and with a fast stop, during publishing. While it is gone every publish
must be answered within the timeout (ANSWER_LIMIT) with 503 problem+json and Retry-After (never a 500, never a hung
request), /readyz 503 and /healthz 200; once it is back publishing resumes without restarting Rewind. Publishers
retry each request with its Idempotency-Key until it is acknowledged, so the log ends equal to what was
acknowledged; SSE subscribers, which reconnect with Last-Event-ID whenever their stream ends (and every second on
purpose, so some reconnects fall in the outage), must end with exactly those events: no gap, no duplicate.

Usage: scripts/durability-test.py --binary .build/debug/rewind [--rounds 3] [--publishers 8]
       scripts/durability-test.py --binary .build/debug/rewind --postgres .build/postgres-test [--outages immediate,fast]
Only talks to 127.0.0.1; every loop is bounded in time and stops by itself; stops only the processes it started.
"""
import argparse
import json
import os
import random
import shutil
import sys
import tempfile
import threading
import time
from collections import defaultdict

import rewindtest
from rewindtest import PostgresCluster, Rewind, SSEReader, TestFailure, free_port, http_get, http_request, wait_until

STREAMS = ["durable.a", "durable.b", "durable.c"]
# Seconds within which every publish must be answered, also while PostgreSQL is gone: Rewind bounds every operation
# by the URL's connect_timeout (10 s by default), which a statement in flight when PostgreSQL crashes can take in
# full (most 503s come at once); half a second more for the HTTP exchange on a busy machine.
ANSWER_LIMIT = 10.5
OUTAGE = 6  # seconds PostgreSQL stays down
RECOVERY_LIMIT = 30  # seconds after PostgreSQL is back within which publishing must work again
ACK_GIVE_UP = 90  # seconds a publisher retries one request before the test fails


def make_request(label, index, n):
    """Request n of publisher `index`: a single JSON event or an NDJSON batch of 2..5, on one of STREAMS. Each data
    starts with the request's name (`label-pINDEX-N-`) and its position in the batch, so the log shows which
    request every event came from."""
    stream = STREAMS[n % len(STREAMS)]
    name = f"{label}-p{index}-{n}"
    size = 1 if n % 2 else random.randint(2, 5)
    datas = [f"{name}-{k}-" + "x" * random.randint(0, 64) for k in range(size)]
    if size == 1:
        body, content_type = json.dumps({"data": datas[0]}), "application/json"
    else:
        body, content_type = "\n".join(json.dumps({"data": d}) for d in datas), "application/x-ndjson"
    return name, stream, datas, body.encode(), content_type


def request_name(data):
    """`label-pINDEX-N` of an event's data."""
    return data.rsplit("-", 2)[0]


class Tally:
    """What the publishers sent and what was acknowledged, shared by their threads."""

    def __init__(self):
        self.lock = threading.Lock()
        self.sent = {}  # request name -> batch size
        self.acked = []  # (id, stream, data)
        self.answers = []  # (started, seconds, status) of every answer while PostgreSQL faults are tested
        self.commits = []  # (started, ended, first id, last id) of every 201 while PostgreSQL faults are tested
        self.errors = []

    def send(self, name, size):
        with self.lock:
            self.sent[name] = size

    def ack(self, ids, stream, datas):
        with self.lock:
            self.acked += [(event_id, stream, data) for event_id, data in zip(ids, datas)]

    def error(self, text):
        with self.lock:
            self.errors.append(text)


def kill_publisher(port, label, index, tally, stop, deadline):
    """Publishes until the server goes away (or the deadline); records what got a 201."""
    n = 0
    while not stop.is_set() and time.monotonic() < deadline:
        n += 1
        name, stream, datas, body, content_type = make_request(label, index, n)
        tally.send(name, len(datas))
        answer = http_request(port, "POST", f"/v1/streams/{stream}/events", body=body,
                              headers={"Content-Type": content_type}, timeout=ANSWER_LIMIT)
        if answer is None:
            return  # the server is gone
        status, payload, _ = answer
        if status != 201:
            tally.error(f"{status} {payload[:200]!r}")
            return
        tally.ack(json.loads(payload)["ids"], stream, datas)


def outage_publisher(port, label, index, tally, stop):
    """Publishes until `stop`, retrying every request with its Idempotency-Key until it is acknowledged; checks
    that every answer comes within ANSWER_LIMIT and is 201, 200 (a replay) or 503 problem+json with Retry-After."""
    n = 0
    while not stop.is_set():
        n += 1
        name, stream, datas, body, content_type = make_request(label, index, n)
        tally.send(name, len(datas))
        headers = {"Content-Type": content_type, "Idempotency-Key": name}
        give_up = time.monotonic() + ACK_GIVE_UP
        while True:
            started = time.monotonic()
            answer = http_request(port, "POST", f"/v1/streams/{stream}/events", body=body, headers=headers,
                                  timeout=ANSWER_LIMIT + 5)
            seconds = time.monotonic() - started
            status = None if answer is None else answer[0]
            with tally.lock:
                tally.answers.append((started, seconds, status))
            if answer is None:
                tally.error(f"publish {name}: no answer within {seconds:.1f} s")
                return
            status, payload, response_headers = answer
            if seconds > ANSWER_LIMIT:
                tally.error(f"publish {name}: {status} after {seconds:.1f} s, over the {ANSWER_LIMIT} s bound")
            if status in (200, 201):
                ids = json.loads(payload)["ids"]
                tally.ack(ids, stream, datas)
                if status == 201:
                    with tally.lock:
                        tally.commits.append((started, started + seconds, ids[0], ids[-1]))
                break
            if status != 503:
                tally.error(f"publish {name}: {status} {payload[:300]!r}")
                return
            content_type = response_headers.get("content-type", "")
            if not content_type.startswith("application/problem+json") or not response_headers.get("retry-after"):
                tally.error(f"publish {name}: 503 with Content-Type {content_type!r} and Retry-After "
                            f"{response_headers.get('retry-after')!r}, not problem+json with Retry-After")
                return
            if time.monotonic() > give_up:
                tally.error(f"publish {name}: still 503 after {ACK_GIVE_UP} s")
                return
            time.sleep(0.1)


class Subscriber:
    """One SSE subscriber on a stream from its beginning. Whenever its stream ends, and every second on purpose, it
    reconnects with Last-Event-ID of the last event it got; a refused reconnect (503) is retried."""

    def __init__(self, port, stream):
        self.port, self.stream = port, stream
        self.received = []  # (id, data)
        self.errors = []
        self.ended = self.refused = 0  # streams the server ended; reconnects answered 503
        self.target = None  # the stream's last id, once publishing is over
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        deadline = time.monotonic() + 600
        path = f"/v1/streams/{self.stream}/events?from=earliest"
        while time.monotonic() < deadline:
            last = self.received[-1][0] if self.received else None
            if self.target is not None and (last or 0) >= self.target:
                return
            try:
                reader = SSEReader(self.port, path, last_event_id=last, timeout=ANSWER_LIMIT + 5)
            except OSError as error:
                self.errors.append(f"subscribing to {self.stream} after {last}: {error}")
                return
            try:
                if reader.status == 503:
                    self.refused += 1
                    time.sleep(0.2)
                    continue
                if reader.status != 200:
                    self.errors.append(f"subscribing to {self.stream} after {last}: status {reader.status}")
                    return
                reconnect_at = time.monotonic() + 1
                for event_id, event_type, data in reader.events(deadline=reconnect_at):
                    if event_type != "message":
                        self.errors.append(f"{self.stream}: unexpected {event_type} {data}")
                    self.received.append((int(event_id), data))
                    if self.target is not None and int(event_id) >= self.target:
                        break
                else:
                    if time.monotonic() < reconnect_at:
                        self.ended += 1
            finally:
                reader.close()
        self.errors.append(f"{self.stream}: did not catch up within 600 s")


def read_log(port):
    """Every event of the test's streams, through the JSON read API, as (id, stream, data)."""
    return [(e["id"], e["stream"], e["data"]) for e in rewindtest.read_log(port, "stream=durable.*", timeout=30)]


def check_log(events, acked, sent):
    """What is wrong with the log, given what was acknowledged and what was sent."""
    failures = []
    ids = [e[0] for e in events]
    if len(ids) != len(set(ids)):
        failures.append(f"duplicate ids in the log: {len(ids) - len(set(ids))}")
    by_id = {e[0]: e for e in events}
    missing = [a for a in acked if by_id.get(a[0]) != a]
    if missing:
        failures.append(f"{len(missing)} acknowledged events missing or changed, first {missing[0]} "
                        f"found {by_id.get(missing[0][0])}")
    for stream in STREAMS:
        stream_ids = [e[0] for e in events if e[1] == stream]
        if stream_ids != sorted(stream_ids):
            failures.append(f"ids of {stream} out of order")
    groups = defaultdict(list)
    for event_id, _, data in events:
        groups[request_name(data)].append(event_id)
    for name, group in sorted(groups.items()):
        size = sent.get(name)
        if size is None:
            if not name.startswith("after-restart"):
                failures.append(f"the log holds {name}, which was never sent")
        elif sorted(group) != list(range(min(group), min(group) + size)):
            failures.append(f"batch {name} of {size} is in the log as ids {sorted(group)}, not whole and consecutive")
    return failures


def kill_round_check(port, history, round_number):
    """Checks the log after a restart, then publishes one event, whose id must be above every id before."""
    events = read_log(port)
    failures = check_log(events, history.acked, history.sent)
    data = f"after-restart-{round_number}-0-"
    answer = http_request(port, "POST", f"/v1/streams/{STREAMS[0]}/events", body=json.dumps({"data": data}).encode(),
                          headers={"Content-Type": "application/json"}, timeout=ANSWER_LIMIT)
    if answer is None or answer[0] != 201:
        failures.append(f"publishing after the restart: {answer and answer[:2]}")
        return len(events), failures
    new_id = json.loads(answer[1])["ids"][0]
    ids = [e[0] for e in events]
    if ids and new_id <= max(ids):
        failures.append(f"id {new_id} after restart is not above the previous maximum {max(ids)}")
    history.acked.append((new_id, STREAMS[0], data))
    return len(events), failures


def kill_rounds(args, start_server, history):
    """Kill -9 during publishing, `args.rounds` times, each followed by a restart and a check; returns the
    failures."""
    failures = []
    for round_number in range(1, args.rounds + 2):
        server = start_server()
        if round_number > 1:
            count, round_failures = kill_round_check(server.port, history, round_number - 1)
            print(f"round {round_number - 1}: after kill -9 and restart, {count} events in the log, "
                  f"{len(history.acked)} acknowledged: "
                  f"{'FAIL ' + '; '.join(round_failures) if round_failures else 'ok'}", flush=True)
            failures += round_failures
        if round_number > args.rounds:
            server.stop_gracefully()
            break
        tally, stop = Tally(), threading.Event()
        deadline = time.monotonic() + 20
        threads = [threading.Thread(target=kill_publisher, daemon=True,
                                    args=(server.port, f"r{round_number}", i, tally, stop, deadline))
                   for i in range(args.publishers)]
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.5, 2.5))
        server.kill()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        if tally.errors:
            print(f"round {round_number}: publish errors before the kill: {tally.errors[:3]}")
            failures += tally.errors[:3]
        print(f"round {round_number}: killed with SIGKILL after {len(tally.acked)} acknowledged events", flush=True)
        history.acked += tally.acked
        history.sent.update(tally.sent)
    return failures


def ids_out_of_commit_order(commits):
    """Requests answered 201 whose ids are not above those of every request answered 201 before they were sent:
    ids must follow commit order."""
    ended = sorted(commits, key=lambda c: c[1])
    wrong, highest, k = [], 0, 0
    for started, _, first, _ in sorted(commits):
        while k < len(ended) and ended[k][1] < started:
            highest = max(highest, ended[k][3])
            k += 1
        if first <= highest:
            wrong.append((first, highest))
    return wrong


def outage(args, server, cluster, mode, number, history):
    """PostgreSQL stopped (`mode`: immediate or fast) during publishing while Rewind runs; returns the failures."""
    port = server.port
    label = f"o{number}{mode[0]}"
    tally, stop = Tally(), threading.Event()
    subscribers = [Subscriber(port, stream) for stream in STREAMS]
    publishers = [threading.Thread(target=outage_publisher, args=(port, label, i, tally, stop), daemon=True)
                  for i in range(args.publishers)]
    failures = []
    probes = {"healthz": [], "readyz": []}
    resumed = ready = stopping = back = None
    try:
        for t in publishers:
            t.start()
        time.sleep(2)
        stopping = time.monotonic()
        cluster.stop(mode)
        stopped = time.monotonic()
        while time.monotonic() < stopped + OUTAGE:
            for name in probes:
                answer = http_get(port, f"/{name}", timeout=ANSWER_LIMIT)
                probes[name].append(answer and answer[0])
            time.sleep(0.5)
        cluster.start()
        back = time.monotonic()

        def acknowledged_since_back():
            with tally.lock:
                return next((end for started, end, _, _ in tally.commits if started >= back), None)

        def ready_again():
            answer = http_get(port, "/readyz")
            return answer is not None and answer[0] == 200 and time.monotonic()

        try:
            resumed = wait_until(acknowledged_since_back, RECOVERY_LIMIT, "a publish acknowledged after PostgreSQL "
                                 "came back")
            ready = wait_until(ready_again, RECOVERY_LIMIT, "/readyz 200 after PostgreSQL came back")
        except TestFailure as failure:
            failures.append(str(failure))
        time.sleep(2)
    finally:
        if stopping is not None and back is None:
            cluster.start()  # leave the cluster running for whatever runs next
        stop.set()
        for t in publishers:
            t.join(timeout=ACK_GIVE_UP + 30)
    history.acked += tally.acked
    history.sent.update(tally.sent)
    failures += tally.errors[:5]
    if any(t.is_alive() for t in publishers):
        failures.append("a publisher did not finish")
    if any(status != 200 for status in probes["healthz"]):
        failures.append(f"/healthz during the outage answered {probes['healthz']}, not always 200")
    if 503 not in probes["readyz"] or any(status not in (503, 200) for status in probes["readyz"]):
        failures.append(f"/readyz during the outage answered {probes['readyz']}, not 503")
    refused = [(started, seconds) for started, seconds, status in tally.answers if status == 503]
    if not any(stopping < started + seconds < back for started, seconds in refused):
        failures.append("no publish was answered 503 while PostgreSQL was gone")
    wrong_order = ids_out_of_commit_order(tally.commits)
    if wrong_order:
        failures.append(f"{len(wrong_order)} requests got ids below one acknowledged before they were sent, first "
                        f"{wrong_order[0]}")
    events = read_log(port)
    failures += check_log(events, history.acked, history.sent)
    log_ids = {e[0] for e in events if e[2].startswith(label + "-")}
    acked_ids = {a[0] for a in tally.acked}
    if log_ids != acked_ids:
        failures.append(f"the log holds {len(log_ids - acked_ids)} events of this round that were never acknowledged"
                        f" and lacks {len(acked_ids - log_ids)} acknowledged ones")
    for subscriber in subscribers:
        subscriber.target = max((e[0] for e in events if e[1] == subscriber.stream), default=0)
    for subscriber in subscribers:
        subscriber.thread.join(timeout=120)
        expected = [(e[0], e[2]) for e in sorted(events) if e[1] == subscriber.stream]
        if subscriber.thread.is_alive():
            failures.append(f"the subscriber of {subscriber.stream} did not finish")
        failures += subscriber.errors[:3]
        if subscriber.received != expected:
            got = [r[0] for r in subscriber.received]
            failures.append(f"the subscriber of {subscriber.stream} got {len(got)} events ({len(set(got))} distinct),"
                            f" the log has {len(expected)}; missing {sorted({e[0] for e in expected} - set(got))[:5]}")
    first_503 = min((started + seconds for started, seconds in refused if started >= stopping), default=None)
    slowest = max((seconds for _, seconds in refused), default=0)
    print(f"PostgreSQL {mode} stop {number}: pg_ctl stop took {stopped - stopping:.1f} s; first 503 "
          f"{'never' if first_503 is None else f'{first_503 - stopping:.1f} s after the stop began'}; "
          f"{len(refused)} publishes answered 503, the slowest in {slowest:.1f} s; PostgreSQL down {back - stopping:.0f} s;"
          f" after its start publishing resumed in {'never' if resumed is None else f'{resumed - back:.1f} s'}, "
          f"/readyz 200 in {'never' if ready is None else f'{ready - back:.1f} s'}; {len(tally.acked)} events "
          f"acknowledged; subscriber streams ended by the server {sum(s.ended for s in subscribers)} times, "
          f"reconnects refused {sum(s.refused for s in subscribers)} times: "
          f"{'FAIL ' + '; '.join(failures) if failures else 'ok'}", flush=True)
    return failures


class History:
    """Every request sent and every event acknowledged over the whole run, on one database."""

    def __init__(self):
        self.sent, self.acked = {}, []


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--rounds", type=int, default=3, help="kill -9 rounds")
    parser.add_argument("--publishers", type=int, default=8)
    parser.add_argument("--postgres", metavar="DIR", help="run on a new database of the test cluster in DIR")
    parser.add_argument("--outages", default="immediate,fast",
                        help="with --postgres: PostgreSQL stops to test while Rewind runs, comma-separated "
                             "(immediate, fast), or none")
    args = parser.parse_args()
    outages = [] if args.outages == "none" else args.outages.split(",")
    if any(mode not in ("immediate", "fast") for mode in outages):
        parser.error(f"--outages {args.outages}: each must be immediate or fast")
    workdir = tempfile.mkdtemp(prefix="rewind-durability-")
    servers, failures, history = [], [], History()
    try:
        cluster = PostgresCluster(args.postgres) if args.postgres else None
        db = cluster.database("rewind_durability") if cluster else os.path.join(workdir, "rewind.sqlite")

        def start_server():
            server = Rewind(args.binary, workdir, free_port(), ["--log-level", "warning"], db=db,
                            log_name="server.log")
            servers.append(server)
            server.start()
            return server

        failures += kill_rounds(args, start_server, history)
        for number, mode in enumerate(outages if cluster else [], start=1):
            server = start_server()
            failures += outage(args, server, cluster, mode, number, history)
            server.stop_gracefully()
    except TestFailure as failure:
        failures.append(str(failure))
    finally:
        for server in servers:
            server.stop()
    where = f"PostgreSQL ({args.postgres})" if args.postgres else "SQLite"
    if failures:
        print(f"durability test on {where} FAILED: {'; '.join(failures[:10])}\nserver log in "
              f"{os.path.join(workdir, 'server.log')}:\n{servers[-1].log_tail() if servers else ''}")
        sys.exit(1)
    print(f"durability test on {where} passed: {args.rounds} kills, {len(history.acked)} acknowledged events all "
          f"present, no duplicate id" + (f"; PostgreSQL stopped ({', '.join(outages)}) and back, no 500, nothing lost"
                                         if args.postgres and outages else ""))
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
