#!/usr/bin/env python3
"""Durability after 201: publishers under load, the server killed with SIGKILL at a random moment, restarted on
the same database file. Every event that was answered 201 must be there with the same id and data, no id may
appear twice, and ids must keep increasing after the restart.

Usage: scripts/durability-test.py --binary .build/debug/rewind [--rounds 3] [--publishers 8]
Only talks to 127.0.0.1; every loop is bounded in time and stops by itself.
"""
import argparse
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

STREAMS = ["durable.a", "durable.b", "durable.c"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(binary, db, port, log):
    process = subprocess.Popen(
        [binary, "serve", "--host", "127.0.0.1", "--port", str(port), "--db", db],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited early with {process.returncode}; see {log.name}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    sys.exit("server did not become healthy within 30 s")


def publisher(port, round_number, index, acked, lock, stop, deadline):
    """Publishes single events and small batches until the server goes away; records what got a 201."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    n = 0
    while not stop.is_set() and time.monotonic() < deadline:
        n += 1
        stream = STREAMS[n % len(STREAMS)]
        size = 1 if n % 2 else random.randint(2, 5)
        datas = [f"r{round_number}-p{index}-{n}-{k}-" + "x" * random.randint(0, 64) for k in range(size)]
        if size == 1:
            body, content_type = json.dumps({"data": datas[0]}), "application/json"
        else:
            body, content_type = "\n".join(json.dumps({"data": d}) for d in datas), "application/x-ndjson"
        try:
            connection.request("POST", f"/v1/streams/{stream}/events", body=body, headers={"Content-Type": content_type})
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            return  # the server is gone
        if response.status != 201:
            with lock:
                acked["errors"].append(f"{response.status} {payload[:200]!r}")
            return
        ids = json.loads(payload)["ids"]
        with lock:
            for event_id, data in zip(ids, datas):
                acked["events"].append((event_id, stream, data))


def read_log(port):
    """Every event of every stream, through the JSON read API."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    events = []
    for stream in STREAMS:
        after = 0
        while True:
            connection.request("GET", f"/v1/streams/{stream}/events?after={after}&limit=10000",
                               headers={"Accept": "application/json"})
            response = connection.getresponse()
            page = json.loads(response.read())
            if response.status != 200:
                sys.exit(f"read failed: {response.status} {page}")
            if not page["events"]:
                break
            events += [(e["id"], e["stream"], e["data"]) for e in page["events"]]
            after = page["events"][-1]["id"]
    return events


def verify(port, acked, round_number):
    events = read_log(port)
    ids = [e[0] for e in events]
    failures = []
    if len(ids) != len(set(ids)):
        failures.append(f"duplicate ids in the log: {len(ids) - len(set(ids))}")
    by_id = {e[0]: e for e in events}
    missing = [a for a in acked if by_id.get(a[0]) != a]
    if missing:
        failures.append(f"{len(missing)} acknowledged events missing or changed, first {missing[0]} found {by_id.get(missing[0][0])}")
    for stream in STREAMS:
        stream_ids = [e[0] for e in events if e[1] == stream]
        if stream_ids != sorted(stream_ids):
            failures.append(f"ids of {stream} out of order")
    # A new event after the restart gets an id above everything ever acknowledged.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    connection.request("POST", f"/v1/streams/{STREAMS[0]}/events", body=json.dumps({"data": f"after-restart-{round_number}"}),
                       headers={"Content-Type": "application/json"})
    response = connection.getresponse()
    new_id = json.loads(response.read())["ids"][0]
    if ids and new_id <= max(ids):
        failures.append(f"id {new_id} after restart is not above the previous maximum {max(ids)}")
    acked.append((new_id, STREAMS[0], f"after-restart-{round_number}"))
    return len(events), failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--publishers", type=int, default=8)
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="rewind-durability-")
    db = os.path.join(workdir, "rewind.sqlite")
    log = open(os.path.join(workdir, "server.log"), "w")
    all_acked = []
    failed = False
    for round_number in range(1, args.rounds + 1):
        port = free_port()
        server = start_server(args.binary, db, port, log)
        if round_number > 1:
            count, failures = verify(port, all_acked, round_number - 1)
            print(f"round {round_number - 1}: after kill -9 and restart, {count} events in the log, "
                  f"{len(all_acked)} acknowledged: {'FAIL ' + '; '.join(failures) if failures else 'ok'}", flush=True)
            failed |= bool(failures)
        acked = {"events": [], "errors": []}
        lock, stop = threading.Lock(), threading.Event()
        deadline = time.monotonic() + 20
        threads = [threading.Thread(target=publisher, args=(port, round_number, i, acked, lock, stop, deadline))
                   for i in range(args.publishers)]
        for t in threads:
            t.start()
        time.sleep(random.uniform(0.5, 2.5))
        server.send_signal(signal.SIGKILL)
        server.wait()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        if acked["errors"]:
            print(f"round {round_number}: publish errors before the kill: {acked['errors'][:3]}")
            failed = True
        print(f"round {round_number}: killed with SIGKILL after {len(acked['events'])} acknowledged events", flush=True)
        all_acked += acked["events"]
    port = free_port()
    server = start_server(args.binary, db, port, log)
    count, failures = verify(port, all_acked, args.rounds)
    print(f"round {args.rounds}: after kill -9 and restart, {count} events in the log, {len(all_acked)} acknowledged: "
          f"{'FAIL ' + '; '.join(failures) if failures else 'ok'}", flush=True)
    failed |= bool(failures)
    server.terminate()
    server.wait(timeout=30)
    if failed:
        print(f"durability test FAILED; server log in {log.name}")
        sys.exit(1)
    print(f"durability test passed: {args.rounds} kills, {len(all_acked)} acknowledged events all present, no duplicate id")


if __name__ == "__main__":
    main()
