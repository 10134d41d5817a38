#!/usr/bin/env python3
"""Maintenance by another process reaches a running server.

Starts `rewind serve` on a temporary database, publishes on several streams and opens SSE subscribers. Then,
from other processes writing the same file:
  - a second `rewind serve` on the same database deletes a stream over its HTTP API (no command deletes a stream
    in a file directly); the first server must close that stream's open subscriber within a few seconds, with no
    request of its own in between, and answer a reconnect with 204;
  - `rewind prune --db FILE` removes old events; subscribers connecting to the first server with cursors before
    the new horizon, at once and a moment later, must get `rewind.gap` and never an event the prune removed
    (compared against the ids `rewind prune` reports), and subscribers that were live meanwhile must stay open
    and get the next event.

Usage: scripts/maintenance-test.py --binary .build/debug/rewind
Only talks to 127.0.0.1; every wait is bounded in time; stops only the servers it started, by PID.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

DEADLINE = 5.0  # seconds a deleted stream's subscriber may stay open on the other server


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
    process.wait()
    sys.exit("server did not become healthy within 30 s")


def stop_server(process):
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def request(port, method, path, body=None, headers=None):
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request(method, path, body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, response.read()


def publish(port, stream, datas):
    body = "\n".join(json.dumps({"data": d}) for d in datas)
    status, payload = request(port, "POST", f"/v1/streams/{stream}/events", body, {"Content-Type": "application/x-ndjson"})
    if status != 201:
        sys.exit(f"publish to {stream} answered {status}: {payload[:200]!r}")
    return json.loads(payload)["ids"]


class SSEParser:
    """The SSE event stream format (WHATWG HTML §9.2.6): fields, dispatch on a blank line, comments ignored."""

    def __init__(self):
        self.buffer = b""
        self.type = ""
        self.data = []
        self.last_id = ""
        self.has_id = False

    def feed(self, chunk):
        self.buffer += chunk
        events = []
        while True:
            cut = min((i for i in (self.buffer.find(b"\r"), self.buffer.find(b"\n")) if i >= 0), default=-1)
            if cut < 0:
                return events
            if self.buffer[cut:cut + 1] == b"\r" and cut + 1 == len(self.buffer):
                return events  # a CR at the end may be the first half of CRLF
            line = self.buffer[:cut].decode("utf-8", "replace")
            skip = 2 if self.buffer[cut:cut + 2] == b"\r\n" else 1
            self.buffer = self.buffer[cut + skip:]
            if line == "":
                if self.data:
                    events.append({"type": self.type or "message", "data": "\n".join(self.data),
                                   "id": self.last_id if self.has_id else None})
                self.type, self.data, self.has_id = "", [], False
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                self.type = value
            elif name == "data":
                self.data.append(value)
            elif name == "id" and "\0" not in value:
                self.last_id, self.has_id = value, True


class Subscriber(threading.Thread):
    """One SSE connection read on its own thread until the server ends it or `stop` is set."""

    def __init__(self, name, port, path, headers=None, limit=60.0):
        super().__init__(daemon=True)
        self.name, self.port, self.path, self.headers, self.limit = name, port, path, headers or {}, limit
        self.status = None
        self.events = []
        self.ended = threading.Event()
        self.ended_at = None
        self.error = None
        self.stopping = False
        self.connection = None
        self.lock = threading.Lock()

    def run(self):
        parser = SSEParser()
        try:
            # The socket timeout bounds the whole subscription; `stop` ends it sooner.
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.limit)
            self.connection.request("GET", self.path, headers={"Accept": "text/event-stream", **self.headers})
            response = self.connection.getresponse()
            self.status = response.status
            if response.status != 200:
                response.read()
                return
            while not self.stopping:
                chunk = response.read1(65536)
                if not chunk:
                    return
                with self.lock:
                    self.events += parser.feed(chunk)
        except (OSError, http.client.HTTPException, ValueError) as error:
            if not self.stopping:
                self.error = repr(error)
        finally:
            self.ended_at = time.monotonic()
            self.ended.set()

    def stop(self):
        self.stopping = True
        if self.connection is not None and self.connection.sock is not None:
            try:
                self.connection.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def snapshot(self):
        with self.lock:
            return list(self.events)

    def ids(self):
        return [int(e["id"]) for e in self.snapshot() if e["type"] == "message"]


def wait_for(what, condition, limit=10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError(f"timed out after {limit} s waiting until {what}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--binary", required=True)
    parser.add_argument("--keep", type=int, default=5, help="events per stream the prune keeps")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    failures = []
    summary = {"behind": 0, "pruned": 0, "closed": []}

    def check(condition, message):
        if not condition:
            failures.append(message)
            print(f"FAIL: {message}", flush=True)

    with tempfile.TemporaryDirectory(prefix="rewind-maintenance-") as directory:
        db = os.path.join(directory, "rewind.sqlite")
        port, other_port = free_port(), free_port()
        log = open(os.path.join(directory, "server.log"), "w")
        other_log = open(os.path.join(directory, "other.log"), "w")
        server = start_server(binary, db, port, log)
        other = None
        subscribers = []
        try:
            # The doomed stream's events come first, so its deletion (which also drops the server's window through
            # its last id) leaves the other streams' events in the window for the prune to be tested on.
            doomed = publish(port, "doomed", [f"d{n}" for n in range(10)])
            published = {"orders": [], "audit": [], "misc": []}
            for round_number in range(40):
                for stream in ("orders", "audit"):
                    published[stream] += publish(port, stream, [f"{stream}-{round_number}"])
            published["misc"] += publish(port, "misc", ["only"])
            head = published["misc"][-1]

            doomed_subscriber = Subscriber("doomed, live", port, "/v1/streams/doomed/events", {"Last-Event-ID": "0"})
            doomed_pattern = Subscriber("doom*, live", port, "/v1/events?stream=doom*&after=0")
            live_orders = Subscriber("orders, live", port, f"/v1/streams/orders/events?after={head}")
            subscribers += [doomed_subscriber, doomed_pattern, live_orders]
            for subscriber in subscribers:
                subscriber.start()
            wait_for("the doomed stream's subscribers have its events",
                     lambda: doomed_subscriber.ids() == doomed and doomed_pattern.ids() == doomed)

            # 1. Another process deletes a stream; the first server gets no request until its subscribers end.
            other = start_server(binary, db, other_port, other_log)
            deleted_at = time.monotonic()
            status, body = request(other_port, "DELETE", "/v1/streams/doomed")
            check(status == 204, f"DELETE on the second server answered {status}: {body[:200]!r}")
            for subscriber in (doomed_subscriber, doomed_pattern):
                ended = subscriber.ended.wait(DEADLINE)
                if ended:
                    summary["closed"].append(f"{subscriber.ended_at - deleted_at:.3f} s")
                    print(f"{subscriber.name}: closed {subscriber.ended_at - deleted_at:.3f} s after the deletion")
                check(ended, f"{subscriber.name}: still open {DEADLINE} s after another process deleted the stream")
            check(not live_orders.ended.is_set(), "a live subscriber of another stream was closed")
            status, _ = request(port, "GET", "/v1/streams/doomed/events", headers={"Accept": "text/event-stream", "Last-Event-ID": str(doomed[-1])})
            check(status == 204, f"a reconnect to the deleted stream answered {status}, not 204")
            stop_server(other)
            # A subscription to every stream ends when any stream is deleted, so this one starts afterwards.
            live_all = Subscriber("*, live", port, f"/v1/events?stream=*&after={head}")
            subscribers.append(live_all)
            live_all.start()

            # 2. Another process prunes; the ids it removed are what `rewind prune` reports per stream.
            prune = subprocess.run(
                [binary, "prune", "--db", db, "--retention-max-events", str(args.keep), "--format", "json"],
                capture_output=True, text=True, timeout=60,
            )
            if prune.returncode != 0:
                raise AssertionError(f"rewind prune failed: {prune.stderr.strip()}")
            through = {row["stream"]: int(row["through_id"]) for row in json.loads(prune.stdout)}
            pruned = set(doomed)
            for stream, ids in published.items():
                pruned |= {i for i in ids if i <= through.get(stream, 0)}
            check(through.get("orders") == published["orders"][-args.keep - 1], f"unexpected prune report {through}")
            summary["pruned"] = len(pruned)
            kept = {stream: [i for i in ids if i > through.get(stream, 0)] for stream, ids in published.items()}

            # Subscribers behind the new horizon: at once (before the server's next look at the file) and later.
            behind = []
            for delay in (0.0, 0.3):
                time.sleep(delay)
                for name, path, cursor in (
                    ("orders", "/v1/streams/orders/events?live=false", published["orders"][1]),
                    ("orders,audit", "/v1/events?stream=orders&stream=audit&live=false", published["orders"][0]),
                    ("*", "/v1/events?stream=*&live=false", 0),
                ):
                    subscriber = Subscriber(f"{name} after {cursor} (+{delay} s)", port, path, {"Last-Event-ID": str(cursor)}, limit=20)
                    subscriber.start()
                    behind.append((subscriber, name))
            summary["behind"] = len(behind)
            for subscriber, name in behind:
                check(subscriber.ended.wait(20) and subscriber.error is None,
                      f"{subscriber.name}: a replay with live=false did not end cleanly ({subscriber.error})")
                events = subscriber.snapshot()
                ids = subscriber.ids()
                served = pruned.intersection(ids)
                check(not served, f"{subscriber.name}: served pruned ids {sorted(served)[:10]}")
                check(bool(events) and events[0]["type"] == "rewind.gap", f"{subscriber.name}: first event {events[:1]}, not rewind.gap")
                wanted = sorted(i for s, ids in kept.items() if name == "*" or s in name.split(",") for i in ids)
                check(ids == wanted, f"{subscriber.name}: got {ids[:12]}…, wanted {wanted[:12]}…")

            # 3. Subscribers live through both stay open, never see a removed event and get what comes next.
            following = publish(port, "orders", ["after maintenance"])
            wait_for("the live subscribers got the next event", lambda: live_orders.ids()[-1:] == following and live_all.ids()[-1:] == following)
            for subscriber in (live_orders, live_all):
                served = pruned.intersection(subscriber.ids())
                check(not served, f"{subscriber.name}: served pruned ids {sorted(served)[:10]}")
                check(not subscriber.ended.is_set(), f"{subscriber.name}: closed ({subscriber.error})")
        except AssertionError as error:
            failures.append(str(error))
            print(f"FAIL: {error}", flush=True)
        finally:
            for subscriber in subscribers:
                subscriber.stop()
            stop_server(server)
            if other is not None:
                stop_server(other)
            # A subscription to every stream ends when any stream is deleted, so this one starts afterwards.
            live_all = Subscriber("*, live", port, f"/v1/events?stream=*&after={head}")
            subscribers.append(live_all)
            live_all.start()
            log.close()
            other_log.close()
            if failures:
                with open(log.name) as text:
                    tail = text.read()[-3000:]
                print(f"--- server log (tail) ---\n{tail}")

    if failures:
        print(f"maintenance test FAILED: {len(failures)} problem(s)")
        sys.exit(1)
    print(f"maintenance test passed: a deletion by another server closed its {len(summary['closed'])} subscribers "
          f"(after {', '.join(summary['closed'])}); {summary['behind']} subscriptions behind the horizon `rewind prune` "
          f"set got rewind.gap and none of the {summary['pruned']} removed events; live subscribers kept going")

if __name__ == "__main__":
    main()
