#!/usr/bin/env python3
"""Browser resume across a server restart: a page on another origin opens a real EventSource on Rewind (headless
Chromium, driven through the DevTools protocol); events are published while the Rewind server is stopped with
SIGTERM and started again on the same database. The page must end with every acknowledged event exactly once, in
order, with ids 1..N and matching data, and must have reconnected (an `error` followed by an `open`).

Usage: scripts/browser-test.py --binary .build/debug/rewind [--events 200] [--restarts 1] [--postgres DIR]
With --postgres DIR the log lives in a new database of the throwaway PostgreSQL cluster in DIR
(`scripts/postgres-cluster.sh`, started when it is not running) instead of an SQLite file.
Installs Debian's chromium with apt-get when it is missing and we are root. Standard library only (the DevTools
websocket is spoken by the minimal client in devtools.py, shared with console-test.py). Only talks to 127.0.0.1;
every loop is bounded in time and stops by itself; stops only the processes it started.
"""
import argparse
import contextlib
import http.client
import http.server
import json
import os
import shutil
import threading
import time
from collections import Counter

from devtools import Rewind, TestFailure, free_port, start_chromium, wait_until
from rewindtest import PostgresCluster, scratch_directory

STREAM = "browser"
PUBLISH_RATE = 45  # events per second
PUBLISH_GIVE_UP = 30  # seconds to get one event acknowledged while the server is down
DELIVERY_TIMEOUT = 60  # seconds for the page to receive every acknowledged event

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>Rewind browser test</title>
<script>
  window.received = [];
  window.opens = 0;
  window.errors = 0;
  window.reconnects = 0;  // an error followed by an open
  let sawError = false;
  const es = new EventSource("http://127.0.0.1:REWIND_PORT/v1/streams/STREAM/events?from=earliest");
  window.es = es;
  es.addEventListener("open", () => {
    window.opens++;
    if (sawError) { window.reconnects++; sawError = false; }
  });
  es.addEventListener("error", () => { window.errors++; sawError = true; });
  es.addEventListener("message", (e) => window.received.push({id: e.lastEventId, data: e.data}));
</script>
"""

PAGE_STATE = ("({received: window.received.length, opens: window.opens, errors: window.errors, "
              "reconnects: window.reconnects, readyState: window.es.readyState})")


def serve_page(rewind_port):
    """Serves the test page on its own port, another origin than Rewind; returns the server."""
    page = PAGE.replace("REWIND_PORT", str(rewind_port)).replace("STREAM", STREAM).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = (200, page) if self.path == "/" else (404, b"not found\n")
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def publish(port, n):
    """Publishes event n, retrying while the server is down; returns its id. The Idempotency-Key makes a retry of
    a request that was committed but not answered return the original id instead of appending a duplicate."""
    body = json.dumps({"data": f"event-{n}"})
    headers = {"Content-Type": "application/json", "Idempotency-Key": f"browser-test-{n}"}
    deadline = time.monotonic() + PUBLISH_GIVE_UP
    while time.monotonic() < deadline:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        try:
            connection.request("POST", f"/v1/streams/{STREAM}/events", body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            time.sleep(0.1)
            continue
        finally:
            connection.close()
        if response.status in (200, 201):
            return json.loads(payload)["ids"][0]
        if response.status != 503:
            raise TestFailure(f"publishing event {n}: {response.status} {payload[:300]!r}")
        time.sleep(0.1)
    raise TestFailure(f"event {n} was not acknowledged within {PUBLISH_GIVE_UP} s")


def publish_all(rewind, count, restart_at):
    """Publishes events 1..count at PUBLISH_RATE; restarts the server in the background when reaching each number
    in restart_at, so publishing goes on (and retries) while it is down. Returns the acknowledged (id, data)."""
    acked, restarts, restart_errors = [], [], []

    def restart():
        try:
            rewind.restart()
        except TestFailure as error:
            restart_errors.append(error)

    def join_restarts():
        for thread in restarts:
            thread.join(timeout=70)
            if thread.is_alive():
                raise TestFailure("a server restart did not finish within 70 s")

    next_send = time.monotonic()
    try:
        for n in range(1, count + 1):
            if n in restart_at:
                join_restarts()
                restarts.append(threading.Thread(target=restart))
                restarts[-1].start()
            acked.append((publish(rewind.port, n), f"event-{n}"))
            next_send = max(next_send + 1 / PUBLISH_RATE, time.monotonic())
            time.sleep(max(0.0, next_send - time.monotonic()))
    finally:
        join_restarts()  # never leave a restart running behind the cleanup
    if restart_errors:
        raise restart_errors[0]
    return acked


def wait_for_delivery(devtools, expected):
    """Polls the page until it has `expected` events (then a short settle for late duplicates) or the timeout."""
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    while time.monotonic() < deadline:
        state = devtools.evaluate(PAGE_STATE)
        if state["received"] >= expected or state["readyState"] == 2:  # 2: CLOSED, EventSource gave up
            break
        time.sleep(0.2)
    time.sleep(0.5)
    return devtools.evaluate(PAGE_STATE), devtools.evaluate("window.received")


def first_items(values, limit=10):
    values = list(values)
    return ", ".join(map(str, values[:limit])) + (f" ... ({len(values)} in all)" if len(values) > limit else "")


def differences(acked, received):
    """What differs between the acknowledged (id, data) pairs, the page's events, and ids 1..N."""
    problems = []
    acked_ids = [event_id for event_id, _ in acked]
    if acked_ids != list(range(1, len(acked) + 1)):
        problems.append(f"acknowledged ids are not 1..{len(acked)}: {first_items(acked_ids)}")
    expected = [(str(event_id), data) for event_id, data in acked]
    got = [(event["id"], event["data"]) for event in received]
    if got != expected:
        index = next((i for i, (a, b) in enumerate(zip(expected, got)) if a != b), min(len(expected), len(got)))
        problems.append(f"page has {len(got)} events, {len(expected)} acknowledged; first difference at position "
                        f"{index + 1}: expected {expected[index] if index < len(expected) else 'nothing'}, "
                        f"page has {got[index] if index < len(got) else 'nothing'}")
        page_ids = [event_id for event_id, _ in got]
        expected_ids, seen_ids = {event_id for event_id, _ in expected}, set(page_ids)
        missing = [event_id for event_id, _ in expected if event_id not in seen_ids]
        duplicates = [event_id for event_id, times in Counter(page_ids).items() if times > 1]
        unexpected = [event_id for event_id in page_ids if event_id not in expected_ids]
        for name, ids in (("missing", missing), ("duplicated", duplicates), ("not acknowledged", unexpected)):
            if ids:
                problems.append(f"{name} ids: {first_items(ids)}")
    return problems


def plural(count, word):
    return f"{count} {word}{'' if count == 1 else 's'}"


def run(args, workdir, stack):
    binary = os.path.join(workdir, "rewind")
    shutil.copy2(args.binary, binary)
    rewind_port = free_port()
    page_server = serve_page(rewind_port)
    stack.callback(page_server.server_close)
    stack.callback(page_server.shutdown)
    page_origin = f"http://127.0.0.1:{page_server.server_address[1]}"
    db = PostgresCluster(args.postgres).database("rewind_browser") if args.postgres else None
    rewind = Rewind(binary, workdir, rewind_port, ["--cors-origin", page_origin], db=db)
    stack.callback(rewind.stop)
    rewind.start()

    devtools = start_chromium(workdir, stack)
    devtools.call("Page.navigate", url=page_origin + "/")
    wait_until(lambda: devtools.evaluate("window.opens >= 1 || (window.es && window.es.readyState === 2)"), 30,
               "the page's EventSource to open")
    if devtools.evaluate("window.es.readyState") == 2:
        raise TestFailure(f"the page's EventSource on {rewind_port} failed and closed (CORS refused or bad response)")

    restart_at = {args.events * (k + 1) // (args.restarts + 2) for k in range(args.restarts)}
    acked = publish_all(rewind, args.events, restart_at)
    state, received = wait_for_delivery(devtools, len(acked))
    problems = differences(acked, received)
    if state["reconnects"] < args.restarts:
        problems.append(f"the page saw {state['reconnects']} reconnects (error then open) for {args.restarts} "
                        f"restarts; opens {state['opens']}, errors {state['errors']}, readyState {state['readyState']}")
    if problems:
        raise TestFailure("\n  ".join(problems) + f"\nRewind log (successful requests left out):\n{rewind.log_tail()}")
    where = "PostgreSQL" if args.postgres else "SQLite"
    print(f"browser test on {where} passed: {len(acked)} events, ids 1..{len(acked)} exactly once in order, "
          f"{plural(args.restarts, 'server restart')}, {plural(state['reconnects'], 'reconnect')}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="the rewind executable to test (copied first)")
    parser.add_argument("--events", type=int, default=200)
    parser.add_argument("--restarts", type=int, choices=[1, 2], default=1)
    parser.add_argument("--postgres", metavar="DIR", help="keep the log in a new database of the test cluster in DIR")
    args = parser.parse_args()
    if args.events < 10:
        parser.error("--events must be at least 10")
    with scratch_directory("browser") as workdir, contextlib.ExitStack() as stack:
        run(args, workdir, stack)


if __name__ == "__main__":
    main()
