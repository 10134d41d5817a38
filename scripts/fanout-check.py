#!/usr/bin/env python3
"""Fan-out check: starts Rewind, runs `rewind bench fanout` against it, and fails unless every subscriber
received every published event exactly once and in order, none was disconnected, and the publishers kept the
rate. With --slow, some subscribers read one small chunk a second while events are published and must still end
with the complete sequence. Prints the bench's figures and the server's memory.

Usage:
  scripts/fanout-check.py --binary .build/release/rewind --subscribers 2000 --rate 500 --duration 30 --publishers 160
  scripts/fanout-check.py --binary .build/debug/rewind --subscribers 200 --rate 100 --duration 10 --slow 1
  scripts/fanout-check.py --binary .build/debug/rewind --postgres .build/postgres-test ...
With --postgres DIR the log lives in a new database of the throwaway PostgreSQL cluster in DIR
(`scripts/postgres-cluster.sh`, started when it is not running) instead of an SQLite file.
Only talks to 127.0.0.1; the bench bounds its own run; the server it starts is stopped by PID.
"""
import argparse
import json
import shutil
import subprocess
import sys
import tempfile

from rewindtest import PostgresCluster, Rewind, TestFailure, free_port


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--duration", type=float, default=10)
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--slow", type=int, default=0, help="subscribers reading one small chunk a second")
    parser.add_argument("--window-events", type=int, default=16384)
    parser.add_argument("--event-size", type=int, default=64, help="bytes of data per event")
    parser.add_argument("--postgres", metavar="DIR", help="keep the log in a new database of the test cluster in DIR")
    parser.add_argument("--no-rate-check", action="store_true",
                        help="check delivery only, not that the publishers kept the rate (for debug builds)")
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="rewind-fanout-")
    port = free_port()
    server = None
    try:
        db = PostgresCluster(args.postgres).database("rewind_fanout") if args.postgres else None
        server = Rewind(args.binary, workdir, port, ["--log-level", "warning", "--window-events", str(args.window_events)],
                        db=db, log_name="server.log")
        server.start()
    except TestFailure as failure:
        if server:
            server.stop()
        sys.exit(f"fan-out check FAILED: {failure}")
    where = "PostgreSQL" if args.postgres else "SQLite"
    try:
        url = f"http://127.0.0.1:{port}/v1/streams/{{stream}}/events"
        bench = subprocess.run(
            [args.binary, "bench", "fanout", "--publish-url", url, "--subscribe-url", url, "--subscribers", str(args.subscribers),
             "--rate", str(args.rate), "--duration", str(args.duration), "--publishers", str(args.publishers),
             "--slow-subscribers", str(args.slow), "--event-size", str(args.event_size), "--server-pid", str(server.process.pid), "--json"],
            capture_output=True, text=True, timeout=args.duration + 600)
        if bench.returncode != 0:
            sys.exit(f"rewind bench failed: {bench.stderr.strip()}")
        report = json.loads(bench.stdout)
        print(json.dumps(report))
        expected = int(args.rate * args.duration)
        failures = [f"{key}={report[key]}" for key in ("gaps", "duplicates", "reorders", "disconnects", "incomplete_subscribers", "publish_errors")
                    if report[key] != 0]
        if not args.no_rate_check and report["published"] < expected * 0.98:
            failures.append(f"published {report['published']} of {expected} (the rate was not kept)")
        if report["deliveries"] != report["published"] * args.subscribers:
            failures.append(f"deliveries {report['deliveries']} != published x subscribers")
        if failures:
            sys.exit("fan-out check FAILED: " + ", ".join(failures))
        print(f"fan-out check on {where} passed: {args.subscribers} subscribers ({args.slow} slow) x {report['published']} events, "
              f"no gap, duplicate, reordering or disconnect; server RSS {report['server_rss_kb_before']} KiB before, "
              f"{report['server_rss_kb_max']} KiB at most")
    finally:
        server.stop()
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
