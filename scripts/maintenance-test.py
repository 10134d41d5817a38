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
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rewindtest import (Rewind, SSESubscriber, TestFailure, free_port, http_request, publish_batch,  # noqa: E402
                        wait_until)

DEADLINE = 5.0  # seconds a deleted stream's subscriber may stay open on the other server


def publish(port, stream, datas):
    answer = publish_batch(port, stream, datas, timeout=10)
    if answer is None or answer[0] != 201:
        sys.exit(f"publish to {stream} answered {answer and answer[0]}: {answer and answer[1]!r}")
    return answer[1]["ids"]


class Subscriber(SSESubscriber):
    """One SSE connection read on its own thread until the server ends it or `stop` is called; `limit` bounds it."""

    def __init__(self, name, port, path, headers=None, limit=60.0):
        super().__init__(port, path, headers=headers, seconds=limit, name=name)

    def ids(self):
        return [int(event_id) for event_id, event_type, _ in self.snapshot() if event_type == "message"]


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
        port, other_port = free_port(), free_port()
        server = Rewind(binary, directory, port, retry=None, log_name="server.log")
        db = server.db
        other = Rewind(binary, directory, other_port, db=db, retry=None, log_name="other.log")
        server.start()
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
            wait_until(lambda: doomed_subscriber.ids() == doomed and doomed_pattern.ids() == doomed, 10,
                       "the doomed stream's subscribers have its events", interval=0.02)

            # 1. Another process deletes a stream; the first server gets no request until its subscribers end.
            other.start()
            deleted_at = time.monotonic()
            status, body = (http_request(other_port, "DELETE", "/v1/streams/doomed", timeout=10) or (None, b""))[:2]
            check(status == 204, f"DELETE on the second server answered {status}: {body[:200]!r}")
            for subscriber in (doomed_subscriber, doomed_pattern):
                ended = subscriber.ended.wait(DEADLINE)
                if ended:
                    summary["closed"].append(f"{subscriber.ended_at - deleted_at:.3f} s")
                    print(f"{subscriber.name}: closed {subscriber.ended_at - deleted_at:.3f} s after the deletion")
                check(ended, f"{subscriber.name}: still open {DEADLINE} s after another process deleted the stream")
            check(not live_orders.ended.is_set(), "a live subscriber of another stream was closed")
            status = (http_request(port, "GET", "/v1/streams/doomed/events", timeout=10,
                                   headers={"Accept": "text/event-stream", "Last-Event-ID": str(doomed[-1])}) or [None])[0]
            check(status == 204, f"a reconnect to the deleted stream answered {status}, not 204")
            other.stop()
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
                check(bool(events) and events[0][1] == "rewind.gap", f"{subscriber.name}: first event {events[:1]}, not rewind.gap")
                wanted = sorted(i for s, ids in kept.items() if name == "*" or s in name.split(",") for i in ids)
                check(ids == wanted, f"{subscriber.name}: got {ids[:12]}…, wanted {wanted[:12]}…")

            # 3. Subscribers live through both stay open, never see a removed event and get what comes next.
            following = publish(port, "orders", ["after maintenance"])
            wait_until(lambda: live_orders.ids()[-1:] == following and live_all.ids()[-1:] == following, 10,
                       "the live subscribers got the next event", interval=0.02)
            for subscriber in (live_orders, live_all):
                served = pruned.intersection(subscriber.ids())
                check(not served, f"{subscriber.name}: served pruned ids {sorted(served)[:10]}")
                check(not subscriber.ended.is_set(), f"{subscriber.name}: closed ({subscriber.error})")
        except (AssertionError, TestFailure) as error:
            failures.append(str(error))
            print(f"FAIL: {error}", flush=True)
        finally:
            for subscriber in subscribers:
                subscriber.stop()
            server.stop()
            other.stop()
            if failures:
                print(f"--- server log (tail) ---\n{server.log_text()[-3000:]}")

    if failures:
        print(f"maintenance test FAILED: {len(failures)} problem(s)")
        sys.exit(1)
    print(f"maintenance test passed: a deletion by another server closed its {len(summary['closed'])} subscribers "
          f"(after {', '.join(summary['closed'])}); {summary['behind']} subscriptions behind the horizon `rewind prune` "
          f"set got rewind.gap and none of the {summary['pruned']} removed events; live subscribers kept going")

if __name__ == "__main__":
    main()
