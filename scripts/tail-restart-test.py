#!/usr/bin/env python3
"""`rewind tail` across server restarts: a tail follows two streams while `rewind publish` (and batches over
HTTP) keep publishing and the server is stopped (SIGTERM, or SIGKILL) and restarted on the same database. The
tail's output must hold every published event of those streams exactly once, in id order, with the data sent.

Usage: scripts/tail-restart-test.py --binary .build/debug/rewind [--restarts 3]
Only talks to 127.0.0.1; every loop is bounded in time and count and stops by itself.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rewindtest import Rewind, free_port, publish_batch  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--binary", required=True)
    parser.add_argument("--restarts", type=int, default=3)
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    workdir = tempfile.mkdtemp(prefix="rewind-tail-")
    db = os.path.join(workdir, "tail.sqlite")
    port = free_port()
    server = Rewind(binary, workdir, port, db=db, retry=200, log_name="server.log")
    server.start()
    base = f"http://127.0.0.1:{port}"

    out_path = os.path.join(workdir, "tail.ndjson")
    err_path = os.path.join(workdir, "tail.err")
    with open(out_path, "w") as out, open(err_path, "w") as err:
        tail = subprocess.Popen(
            [binary, "tail", "orders", "audit.*", "--from", "earliest", "--format", "ndjson", "--server", base],
            stdout=out, stderr=err,
        )
    published = []  # (id, data) of events in the tailed streams that got a 201
    lock = threading.Lock()
    stop = threading.Event()

    def publisher(index):
        n = 0
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline and n < 5000:
            n += 1
            stream = ["orders", "audit.eu", "other"][n % 3]
            datas = [f"p{index}-{n}-{k}" for k in range(1 + n % 3)]
            answer = publish_batch(port, stream, datas)
            if answer is None or answer[0] != 201:
                time.sleep(0.05)  # the server is restarting
                continue
            ids = answer[1]["ids"]
            if stream != "other":
                with lock:
                    published.extend(zip(ids, datas))
            time.sleep(0.002)

    threads = [threading.Thread(target=publisher, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    try:
        # `rewind publish` itself, from an argument and from stdin lines.
        for i in range(3):
            result = subprocess.run([binary, "publish", "orders", f"cli-{i}", "--server", base], capture_output=True, text=True, timeout=30)
            assert result.returncode == 0, result.stderr
            answer = json.loads(result.stdout)
            with lock:
                published.append((answer["first_id"], f"cli-{i}"))
        result = subprocess.run(
            [binary, "publish", "audit.eu", "--server", base, "--batch", "2"],
            input="line a\nline b\nline c\n", capture_output=True, text=True, timeout=30,
        )
        assert result.returncode == 0, result.stderr
        answers = [json.loads(line) for line in result.stdout.splitlines()]
        assert [a["ids"] for a in answers] == [[answers[0]["first_id"], answers[0]["first_id"] + 1], [answers[1]["first_id"]]], answers
        with lock:
            published.extend(zip(answers[0]["ids"] + answers[1]["ids"], ["line a", "line b", "line c"]))
        for restart in range(args.restarts):
            time.sleep(1.0)
            if restart % 2 == 0:
                server.stop_gracefully()
            else:
                server.kill()
            time.sleep(0.5)
            server.start()
        time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    # What the log holds for the tailed streams: a publish cut off by a SIGKILL may have committed without its
    # answer arriving, so the log, not the list of answers, is what the tail must match exactly.
    result = subprocess.run(
        [binary, "query", "--db", db, "--stream", "orders", "--stream", "audit.*", "--limit", "0", "--format", "ndjson"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    expected = [(event["id"], event["data"]) for event in map(json.loads, result.stdout.splitlines())]
    deadline = time.monotonic() + 30
    received = []
    while time.monotonic() < deadline:
        with open(out_path) as f:
            received = [json.loads(line) for line in f if line.endswith("\n")]
        if len(received) >= len(expected):
            break
        time.sleep(0.2)
    tail.send_signal(signal.SIGTERM)
    tail.wait(timeout=10)
    server.stop_gracefully()

    got = [(int(event["id"]), event["data"]) for event in received]
    ids = [event_id for event_id, _ in got]
    problems = []
    if len(ids) != len(set(ids)):
        problems.append(f"duplicates: {len(ids) - len(set(ids))}")
    if ids != sorted(ids):
        problems.append("out of order")
    if got != expected:
        missing = sorted(set(expected) - set(got))
        extra = sorted(set(got) - set(expected))
        problems.append(f"missing {len(missing)} (first {missing[:5]}), unexpected {len(extra)} (first {extra[:5]})")
    with lock:
        unacknowledged = sorted(set(published) - set(expected))
    if unacknowledged:
        problems.append(f"{len(unacknowledged)} acknowledged events not in the log (first {unacknowledged[:5]})")
    if len(expected) < 100:
        problems.append(f"only {len(expected)} events were published")
    with open(err_path) as f:
        reconnects = sum(1 for line in f if "reconnecting" in line)
    if reconnects < args.restarts:
        problems.append(f"only {reconnects} reconnects reported for {args.restarts} restarts")
    if problems:
        sys.exit(f"FAIL: tail over {args.restarts} restarts: " + "; ".join(problems) + f" (see {workdir})")
    print(f"ok: tail received all {len(got)} events exactly once and in order across {args.restarts} restarts ({reconnects} reconnects)")


if __name__ == "__main__":
    main()
