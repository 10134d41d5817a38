#!/usr/bin/env python3
"""Real third-party SSE clients against Rewind: httpx-sse and sseclient-py, both widely used in Python, read a
replay, live events and a `Last-Event-ID` resume, and must report exactly the published events: same ids, types
and data, in order, and nothing else (no event made of the stream's first `retry:` bytes, no heartbeat, no
duplicate).

Usage: scripts/sse-clients-test.py --binary .build/debug/rewind
Installs the clients from PyPI into a virtualenv cached at .build/sse-clients-venv and re-runs itself there. Only
talks to 127.0.0.1; every read has a timeout and every loop a bound; stops only the server it started.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
VENV = os.path.join(HERE, "..", ".build", "sse-clients-venv")
PACKAGES = ["httpx>=0.27,<1", "httpx-sse>=0.4,<1", "sseclient-py>=1.8,<2", "requests>=2.31,<3"]
STREAM = "clients"
TIMEOUT = 20  # seconds for any one read


def ensure_venv():
    """Re-runs this script inside a virtualenv holding the clients, creating it the first time."""
    python = os.path.join(VENV, "bin", "python")
    if sys.prefix == os.path.abspath(VENV):
        return
    if not os.path.exists(python) or subprocess.run(
            [python, "-c", "import httpx_sse, sseclient, requests"], capture_output=True).returncode != 0:
        print(f"sse-clients-test: installing {', '.join(PACKAGES)} into {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "--quiet", *PACKAGES], check=True)
    os.execv(python, [python, os.path.abspath(__file__), *sys.argv[1:]])


ensure_venv()

import httpx  # noqa: E402
import requests  # noqa: E402
import sseclient  # noqa: E402
from httpx_sse import connect_sse  # noqa: E402

sys.path.insert(0, HERE)
from rewindtest import Rewind, TestFailure, free_port, http_request_or_fail  # noqa: E402

# Data that a naive client could mistake for framing: several lines, an empty line, field names, a colon first.
# No empty data: sseclient-py drops events whose data is empty, which browsers dispatch.
PAYLOADS = ["plain", "two\nlines", "blank\n\nline", "id: 999", "data: forged", ": not a comment", "retry: 1",
            "ünïcödé ✓ 𝄞", '{"json": [1, 2]}']


def publish(port, event_type, data):
    """Publishes one event and returns (id, type, data) as a client should report it."""
    body = json.dumps({"type": event_type, "data": data}).encode()
    status, answer, _ = http_request_or_fail(port, "POST", f"/v1/streams/{STREAM}/events", body,
                                             {"Content-Type": "application/json"}, timeout=TIMEOUT)
    if status != 201:
        raise TestFailure(f"publish answered {status}")
    return (str(json.loads(answer)["first_id"]), event_type, data)


def read_httpx_sse(url, headers, count, connected):
    """Events as httpx-sse reports them: every ServerSentEvent its iterator yields, until `count` or the end."""
    events = []
    with httpx.Client(timeout=httpx.Timeout(TIMEOUT)) as client:
        with connect_sse(client, "GET", url, headers=headers) as source:
            if source.response.status_code != 200:
                raise TestFailure(f"httpx-sse: GET {url} answered {source.response.status_code}")
            connected.set()
            for event in source.iter_sse():
                events.append((event.id, event.event, event.data))
                if len(events) >= count:
                    break
    return events


def read_sseclient(url, headers, count, connected):
    """Events as sseclient-py reports them, over a streaming `requests` response read as bytes arrive."""
    events = []
    with requests.get(url, headers={"Accept": "text/event-stream", **headers}, stream=True, timeout=TIMEOUT) as response:
        if response.status_code != 200:
            raise TestFailure(f"sseclient-py: GET {url} answered {response.status_code}")
        connected.set()
        client = sseclient.SSEClient(response.iter_content(chunk_size=None))
        for event in client.events():
            events.append((event.id, event.event, event.data))
            if len(events) >= count:
                break
    return events


CLIENTS = {"httpx-sse": read_httpx_sse, "sseclient-py": read_sseclient}


def expect(client, what, got, want):
    if got != want:
        raise TestFailure(f"{client} {what}: expected {len(want)} events {want[:3]}…, got {len(got)}: {got[:5]}…")
    print(f"sse-clients-test: {client} {what}: {len(got)} events, exact", flush=True)


def live(read, port, published):
    """Subscribes from the head, publishes once the stream is open, and returns what the client reported."""
    connected = threading.Event()
    result = {}

    def subscriber():
        try:
            result["events"] = read(f"http://127.0.0.1:{port}/v1/streams/{STREAM}/events", {}, len(PAYLOADS), connected)
        except Exception as error:  # reported by the main thread
            result["error"] = error
            connected.set()

    thread = threading.Thread(target=subscriber, daemon=True)
    thread.start()
    if not connected.wait(TIMEOUT):
        raise TestFailure("live subscription did not open")
    # The subscription's cursor is the head when it opened; give the server a moment to take it.
    time.sleep(0.3)
    new = [publish(port, "live" if n % 2 else "message", data) for n, data in enumerate(PAYLOADS)]
    published.extend(new)
    thread.join(TIMEOUT)
    if thread.is_alive():
        raise TestFailure(f"live subscription reported {len(result.get('events', []))} of {len(new)} events in {TIMEOUT} s")
    if "error" in result:
        raise result["error"]
    return result["events"], new


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=".build/debug/rewind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rewind-sse-clients-") as workdir:
        rewind = Rewind(os.path.abspath(args.binary), workdir, free_port(), extra_args=["--heartbeat", "1"])
        rewind.start()
        try:
            port = rewind.port
            published = [publish(port, "order.created" if n % 3 == 0 else "message", data)
                         for n, data in enumerate(PAYLOADS)]
            for name, read in CLIENTS.items():
                base = f"http://127.0.0.1:{port}/v1/streams/{STREAM}/events"
                # Replay of the whole history, then the stream ends.
                replay = read(base + "?from=earliest&live=false", {}, 10_000, threading.Event())
                expect(name, "replay", replay, published)
                # Live: the stream's first bytes, heartbeats, then each event as it commits.
                got, new = live(read, port, published)
                expect(name, "live", got, new)
                # Resume after the fifth event, as a reconnecting client does.
                cursor = published[4][0]
                resumed = read(base + "?live=false", {"Last-Event-ID": cursor}, 10_000, threading.Event())
                expect(name, f"resume after id {cursor}", resumed, published[5:])
                # A stream with nothing to send: no event at all, whatever its first bytes.
                empty = read(base + "?live=false", {"Last-Event-ID": published[-1][0]}, 10_000, threading.Event())
                expect(name, "empty resume", empty, [])
        except TestFailure as failure:
            print(f"sse-clients-test: FAILED: {failure}\n{rewind.log_tail()}", file=sys.stderr)
            return 1
        finally:
            rewind.stop()
    print("sse-clients-test: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
