#!/usr/bin/env python3
"""How Rewind's costs grow with subscribers, event size and log size; prints Markdown tables.

Runs `rewind bench` against a Rewind server it starts (release build by default) on loopback:
  - fan-out at 100 events/s for 10 s with 100, 500, 1 000 and 2 000 subscribers;
  - ingest (16 connections, 5 s) and replay (20 000 events) with 64 B, 1 KiB and 16 KiB events;
  - ingest (64 connections, 5 s) and replay of one stream's 100 000 events, and of the whole log from the
    oldest, with 0, 1 000 000 and 10 000 000 events already stored (filled with NDJSON batches).
Usage: scripts/bench-scaling.py [--binary .build/release/rewind] [--quick]
Only talks to 127.0.0.1; every run is bounded; the server it starts is stopped by PID.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rewindtest import Rewind, free_port  # noqa: E402


def events_url(server):
    return f"http://127.0.0.1:{server.port}/v1/streams/{{stream}}/events"


def bench(binary, *args, timeout=1800):
    result = subprocess.run([binary, "bench", *args, "--json"], capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        sys.exit(f"rewind bench {' '.join(args)} failed: {result.stderr.strip()}")
    return json.loads(result.stdout)


def fresh(binary):
    workdir = tempfile.mkdtemp(prefix="rewind-scaling-")
    server = Rewind(binary, workdir, free_port(), retry=None, log_name="server.log")
    server.start(seconds=60)
    return workdir, server


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=".build/release/rewind")
    parser.add_argument("--quick", action="store_true", help="smaller runs (log sizes up to 1 000 000)")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)

    print("### Subscribers (100 events/s for 10 s, 16 publishing connections)\n")
    print("| subscribers | events published | deliveries/s | latency p50 | p99 | server RSS max | gaps + duplicates + reorders |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for subscribers in [100, 500, 1000, 2000]:
        workdir, server = fresh(binary)
        try:
            r = bench(binary, "fanout", "--publish-url", events_url(server), "--subscribe-url", events_url(server), "--subscribers", str(subscribers),
                      "--rate", "100", "--duration", "10", "--publishers", "16", "--server-pid", str(server.process.pid))
        finally:
            server.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"| {subscribers:,} | {r['published']:,} of 1,000 | {r['deliveries_per_second']:,.0f} | {r['latency_ms']['p50']} ms | {r['latency_ms']['p99']} ms | "
              f"{r['server_rss_kb_max'] / 1024:.0f} MiB | {r['gaps'] + r['duplicates'] + r['reorders']} |", flush=True)

    print("\n### Event size (ingest: 16 connections, 5 s; replay: 20 000 events, one connection)\n")
    print("| event data | ingest events/s | ingest MB/s | replay events/s | replay MB/s |")
    print("|---:|---:|---:|---:|---:|")
    for size in [64, 1024, 16384]:
        workdir, server = fresh(binary)
        try:
            ingest = bench(binary, "ingest", "--publish-url", events_url(server), "--connections", "16", "--duration", "5", "--event-size", str(size))
            replay = bench(binary, "replay", "--publish-url", events_url(server), "--subscribe-url", events_url(server) + "?from=earliest",
                           "--events", "20000", "--batch", "100", "--event-size", str(size), "--stream", "sized")
        finally:
            server.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        print(f"| {size:,} B | {ingest['events_per_second']:,.0f} | {ingest['events_per_second'] * size / 1e6:,.1f} | "
              f"{replay['events_per_second']:,.0f} | {replay['mb_per_second']:,.1f} |", flush=True)

    sizes = [0, 1_000_000] if args.quick else [0, 1_000_000, 10_000_000]
    print("\n### Log size (ingest: 64 connections, 5 s; replays over one connection)\n")
    print("| events stored | ingest events/s | replay of one stream's 100 000 events/s | replay of the whole log from the oldest, events/s |")
    print("|---:|---:|---:|---:|")
    workdir, server = fresh(binary)
    try:
        stored = 0
        for target in sizes:
            if target > stored:
                # Untimed: fill the log with NDJSON batches of 1 000 up to the next size.
                bench(binary, "ingest", "--publish-url", events_url(server), "--connections", "8", "--duration", "3600",
                      "--batch", "1000", "--events", str(target - stored), "--stream", "filler", timeout=3600)
                stored = target
            ingest = bench(binary, "ingest", "--publish-url", events_url(server), "--connections", "64", "--duration", "5",
                           "--stream", f"ingest{target}")
            stream = bench(binary, "replay", "--publish-url", events_url(server), "--subscribe-url", events_url(server) + "?from=earliest",
                           "--events", "100000", "--batch", "1000", "--stream", f"replay{target}")
            total = stored + int(ingest["events"]) + 100_000
            whole = bench(binary, "replay", "--subscribe-url", "http://127.0.0.1:%d/v1/events?stream=*&from=earliest" % server.port,
                          "--publish-url", events_url(server), "--events", str(total), "--no-preload", "--stream", "all")
            print(f"| {target:,} | {ingest['events_per_second']:,.0f} | {stream['events_per_second']:,.0f} | "
                  f"{whole['events_per_second']:,.0f} ({whole['received']:,} events) |", flush=True)
            stored = total
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)



if __name__ == "__main__":
    main()
