#!/usr/bin/env python3
"""Readiness on a full disk: Rewind runs on a small tmpfs of its own; the test fills the file system, publishes until
the store cannot commit, and checks that publishes get 503 problem+json with Retry-After, `/readyz` answers 503 with
the reason while `/healthz` stays 200, nothing half-written appears, and once space is freed `/readyz` is 200 again
by itself and publishing goes on with the next id. Every acknowledged event must be in the log afterwards.

Usage: scripts/disk-full-test.py --binary .build/debug/rewind
Needs root (it mounts a tmpfs in a private mount namespace, re-running itself under `unshare -m`; nothing is
mounted outside that namespace). Only talks to 127.0.0.1; every loop is bounded; stops only the server it started.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from rewindtest import Rewind, TestFailure, free_port, http_request_or_fail, json_answer, wait_until  # noqa: E402

TMPFS_SIZE = "8m"
EVENT_BYTES = 4000
MAX_PUBLISHES = 20_000  # far more than fit: the loop ends at the first 503


def request(port, method, path, body=None, headers=None):
    """(status, parsed JSON body or None, headers with lower-case names)."""
    return json_answer(http_request_or_fail(port, method, path, body=body, headers=headers, timeout=30))


def publish(port, n):
    body = json.dumps({"data": f"{n:08d}-" + "x" * EVENT_BYTES}).encode()
    return request(port, "POST", "/v1/streams/full/events", body, {"Content-Type": "application/json"})


def fill(path):
    """Writes a file until the file system has no space left; returns its size."""
    size = 0
    chunk = b"\0" * 65536
    with open(path, "wb", buffering=0) as filler:
        while True:
            try:
                size += filler.write(chunk)
            except OSError:
                # Fill the last partial block too.
                for small in (4096, 512, 1):
                    try:
                        while True:
                            size += filler.write(b"\0" * small)
                    except OSError:
                        pass
                return size


def run(binary, mountpoint):
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_SIZE}", "tmpfs", mountpoint], check=True)
    rewind = Rewind(binary, mountpoint, free_port())
    rewind.log_path = os.path.join(tempfile.gettempdir(), f"rewind-disk-full-{os.getpid()}.log")
    rewind.start()
    try:
        port = rewind.port
        status, _, _ = request(port, "GET", "/readyz")
        if status != 200:
            raise TestFailure(f"/readyz answered {status} on an empty disk")
        acknowledged = []
        for n in range(5):
            status, body, _ = publish(port, n)
            if status != 201:
                raise TestFailure(f"publish before the disk filled answered {status}: {body}")
            acknowledged.append(body["first_id"])
        filler = os.path.join(mountpoint, "filler")
        size = fill(filler)
        print(f"disk-full-test: filled the file system with {size} bytes", flush=True)
        refused = None
        for n in range(5, MAX_PUBLISHES):
            status, body, headers = publish(port, n)
            if status == 201:
                acknowledged.append(body["first_id"])
                continue
            if status != 503:
                raise TestFailure(f"publish on a full disk answered {status}, expected 503: {body}")
            if headers.get("retry-after") is None or headers.get("content-type") != "application/problem+json":
                raise TestFailure(f"503 without Retry-After or problem+json: {dict(headers)}")
            refused = body
            break
        if refused is None:
            raise TestFailure(f"{MAX_PUBLISHES} publishes all succeeded on a full {TMPFS_SIZE} file system")
        print(f"disk-full-test: {len(acknowledged)} acknowledged, then 503: {refused['detail']}", flush=True)
        for _ in range(3):
            status, body, _ = request(port, "GET", "/readyz")
            if status != 503:
                raise TestFailure(f"/readyz answered {status} while the disk is full: {body}")
            if "full" not in body.get("detail", ""):
                raise TestFailure(f"/readyz does not say why: {body}")
            status, _, _ = request(port, "GET", "/healthz")
            if status != 200:
                raise TestFailure(f"/healthz answered {status} while the disk is full")
            time.sleep(0.5)
        print(f"disk-full-test: /readyz 503 while full: {body['detail']}", flush=True)
        os.remove(filler)
        wait_until(lambda: request(port, "GET", "/readyz")[0] == 200, 15, "/readyz to answer 200 once space is freed")
        status, body, _ = publish(port, 99_999_999)
        if status != 201:
            raise TestFailure(f"publish after space was freed answered {status}: {body}")
        acknowledged.append(body["first_id"])
        status, page, _ = request(port, "GET", "/v1/streams/full/events?after=0&limit=10000",
                                  headers={"Accept": "application/json"})
        ids = [event["id"] for event in page["events"]]
        if ids != acknowledged:
            raise TestFailure(f"the log holds ids {ids[:5]}…{ids[-5:]}, acknowledged {acknowledged[:5]}…{acknowledged[-5:]}")
        if any(len(event["data"]) != 9 + EVENT_BYTES for event in page["events"]):
            raise TestFailure("an event's data is not whole")
        print(f"disk-full-test: ready again; {len(ids)} acknowledged events all in the log, ids consecutive", flush=True)
    except TestFailure:
        print(rewind.log_tail(), file=sys.stderr)
        raise
    finally:
        rewind.stop()
        subprocess.run(["umount", mountpoint], check=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=".build/debug/rewind")
    args = parser.parse_args()
    if os.environ.get("REWIND_DISK_FULL_NAMESPACE") != "1":
        if os.geteuid() != 0:
            print("disk-full-test: needs root to mount a tmpfs", file=sys.stderr)
            return 2
        env = dict(os.environ, REWIND_DISK_FULL_NAMESPACE="1")
        return subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, *sys.argv], env=env).returncode
    with tempfile.TemporaryDirectory(prefix="rewind-disk-full-") as mountpoint:
        try:
            run(os.path.abspath(args.binary), mountpoint)
        except TestFailure as failure:
            print(f"disk-full-test: FAILED: {failure}", file=sys.stderr)
            return 1
    print("disk-full-test: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
