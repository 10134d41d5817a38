#!/usr/bin/env python3
"""One Rewind node against two on one PostgreSQL database; prints Markdown tables.

Starts a throwaway PostgreSQL cluster (scripts/postgres-cluster.sh, fsync on) and, for each of `--runs` runs,
both configurations in alternating order (one, two; then two, one; ...), each on a fresh database with fresh nodes:
  - ingest of single events over 64 connections spread over the nodes;
  - fan-out to 1 000 subscribers spread over the nodes at 100 and at 1 000 events/s (16 publishing connections
    spread over the nodes; `rewind bench fanout` checks that every subscriber got every event once, in order);
  - delivery latency to 100 subscribers at 1 000 events/s published on node A: subscribers on A (same node), and,
    with two nodes, subscribers on B only (cross-node; with B's `rewind_cross_node_lag_seconds`);
  - the writer's ceiling: NDJSON batches of 1 000 events over 16 connections spread over the nodes.
Prints every run, then the medians and the medians of the same-run ratios two nodes / one node.
Before each measurement it waits (up to `--wait` seconds, polling) until no other `rewind bench` runs on the
machine, which shares its cores.
Usage: scripts/bench-cluster.py [--binary .build/release/rewind] [--runs 3] [--quick]
                               [--latency-only [--latency-subscribers N]]
Only talks to 127.0.0.1; every run is bounded; the servers and the cluster it starts are stopped.
"""
import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rewindtest import PostgresCluster, Rewind, free_port, metric_histogram  # noqa: E402

CONFIGURATIONS = {"one": 1, "two": 2}


def events_url(node):
    return f"http://127.0.0.1:{node.port}/v1/streams/{{stream}}/events"


def urls(option, nodes):
    """`--publish-url`/`--subscribe-url` once per node: the bench spreads its connections over them in turn."""
    return [arg for node in nodes for arg in (option, events_url(node))]


def other_benchmarks():
    """Command lines of `rewind bench` processes on the machine (never ours: ours run one at a time, waited for)."""
    result = subprocess.run(["pgrep", "-af", "rewind bench"], capture_output=True, text=True)
    mine = {os.getpid(), os.getppid()}
    return [line for line in result.stdout.splitlines() if line and int(line.split()[0]) not in mine]


def wait_for_quiet(limit):
    """Waits until no other benchmark runs, polling, at most `limit` seconds; returns the seconds waited."""
    start = time.monotonic()
    others = other_benchmarks()
    while others and time.monotonic() - start < limit:
        time.sleep(10)
        others = other_benchmarks()
    waited = time.monotonic() - start
    if others:
        print(f"note: another benchmark still runs after {waited:.0f} s, measuring anyway: {others[0][:120]}",
              file=sys.stderr, flush=True)
    elif waited >= 1:
        print(f"note: waited {waited:.0f} s for another benchmark to end", file=sys.stderr, flush=True)
    return waited


class Runner:
    def __init__(self, binary, wait):
        self.binary = binary
        self.wait = wait

    def bench(self, *args, timeout=600):
        wait_for_quiet(self.wait)
        load = os.getloadavg()[0]
        result = subprocess.run([self.binary, "bench", *args, "--json"], capture_output=True, text=True,
                                timeout=timeout)
        if result.returncode != 0:
            sys.exit(f"rewind bench {' '.join(args)} failed: {result.stderr.strip()}")
        report = json.loads(result.stdout)
        report["load_before"] = round(load, 2)
        return report


def histogram_mean_ms(before, after):
    """The mean of a histogram's samples between two readings of `metric_histogram`, in ms (None without any)."""
    if not before or not after or after["count"] <= before["count"]:
        return None
    return round((after["sum"] - before["sum"]) / (after["count"] - before["count"]) * 1000, 3)


def latency_run(runner, publisher, subscriber, seconds, stream, subscribers=100):
    """`subscribers` (100) on node `subscriber`, 1 000 events/s published on node `publisher`; with the subscribers'
    node's own view: commit to frame written (`rewind_delivery_lag_seconds`) and, from another node, commit to
    catch-up done (`rewind_cross_node_lag_seconds`)."""
    names = ["rewind_delivery_lag_seconds", "rewind_cross_node_lag_seconds"]
    before = [metric_histogram(subscriber.port, name) for name in names]
    report = runner.bench(
        "fanout", "--publish-url", events_url(publisher), "--subscribe-url", events_url(subscriber),
        "--subscribers", str(subscribers), "--rate", "1000", "--duration", str(seconds), "--publishers", "16",
        "--drain-timeout", "60", "--stream", stream)
    after = [metric_histogram(subscriber.port, name) for name in names]
    report["delivery_lag_mean_ms"] = histogram_mean_ms(before[0], after[0])
    if publisher is not subscriber:
        report["node_lag_mean_ms"] = histogram_mean_ms(before[1], after[1])
    return report


def measure(runner, nodes, durations, latency_only=False, latency_subscribers=100):
    """Every measurement of one configuration, on its fresh nodes (only the delivery latencies with
    `latency_only`)."""
    ingest_seconds, fanout_seconds = durations
    a = nodes[0]
    if latency_only:
        return {"local": latency_run(runner, a, a, fanout_seconds, "local", latency_subscribers),
                "cross": latency_run(runner, a, nodes[1], fanout_seconds, "cross", latency_subscribers)}
    out = {}
    out["ingest"] = runner.bench("ingest", *urls("--publish-url", nodes), "--connections", "64",
                                 "--duration", str(ingest_seconds), "--stream", "ingest")
    for rate in (100, 1000):
        out[f"fanout{rate}"] = runner.bench(
            "fanout", *urls("--publish-url", nodes), *urls("--subscribe-url", nodes), "--subscribers", "1000",
            "--rate", str(rate), "--duration", str(fanout_seconds), "--publishers", "16", "--drain-timeout", "60",
            "--stream", f"fanout{rate}")
    out["local"] = latency_run(runner, a, a, fanout_seconds, "local")
    if len(nodes) > 1:
        out["cross"] = latency_run(runner, a, nodes[1], fanout_seconds, "cross")
    out["ceiling"] = runner.bench("ingest", *urls("--publish-url", nodes), "--connections", "16", "--batch", "1000",
                                  "--duration", str(ingest_seconds), "--stream", "ceiling")
    return out


def run_configuration(runner, cluster, workdir, run, name, durations, latency_only=False, latency_subscribers=100):
    db = cluster.database("rewind_bench")
    nodes = [Rewind(runner.binary, workdir, free_port(), ["--node-name", f"bench-{i}"], db=db, retry=None,
                    log_name=f"run{run}-{name}-node{i}.log")
             for i in range(CONFIGURATIONS[name])]
    try:
        for node in nodes:
            node.start(seconds=60)
        return measure(runner, nodes, durations, latency_only, latency_subscribers)
    finally:
        for node in nodes:
            node.stop()
        cluster.psql(f"DROP DATABASE IF EXISTS {db.rsplit('/', 1)[1]}")


# Each row: label, how to get the figure from one configuration's measurements, format.
ROWS = [
    ("single-event ingest, 64 connections (events/s)", lambda m: m["ingest"]["events_per_second"], "{:,.0f}"),
    ("single-event ingest p99 (ms)", lambda m: m["ingest"]["latency_ms"]["p99"], "{:.1f}"),
    ("fan-out 1 000 × 100 ev/s: events published (of 1 000)", lambda m: m["fanout100"]["published"], "{:,}"),
    ("fan-out 1 000 × 100 ev/s: deliveries/s", lambda m: m["fanout100"]["deliveries_per_second"], "{:,.0f}"),
    ("fan-out 1 000 × 100 ev/s: latency p50 (ms)", lambda m: m["fanout100"]["latency_ms"]["p50"], "{:.1f}"),
    ("fan-out 1 000 × 100 ev/s: latency p99 (ms)", lambda m: m["fanout100"]["latency_ms"]["p99"], "{:.1f}"),
    ("fan-out 1 000 × 1 000 ev/s: events published (of 10 000)", lambda m: m["fanout1000"]["published"], "{:,}"),
    ("fan-out 1 000 × 1 000 ev/s: deliveries/s", lambda m: m["fanout1000"]["deliveries_per_second"], "{:,.0f}"),
    ("fan-out 1 000 × 1 000 ev/s: latency p50 (ms)", lambda m: m["fanout1000"]["latency_ms"]["p50"], "{:.1f}"),
    ("fan-out 1 000 × 1 000 ev/s: latency p99 (ms)", lambda m: m["fanout1000"]["latency_ms"]["p99"], "{:.1f}"),
    ("100 subscribers on A, 1 000 ev/s on A: p50 (ms)", lambda m: m["local"]["latency_ms"]["p50"], "{:.1f}"),
    ("100 subscribers on A, 1 000 ev/s on A: p99 (ms)", lambda m: m["local"]["latency_ms"]["p99"], "{:.1f}"),
    ("  its publishes, request to 201: p50 (ms)", lambda m: m["local"]["publish_latency_ms"]["p50"], "{:.1f}"),
    ("  its publishes, request to 201: p99 (ms)", lambda m: m["local"]["publish_latency_ms"]["p99"], "{:.1f}"),
    ("  A's rewind_delivery_lag_seconds, mean (ms)", lambda m: m["local"]["delivery_lag_mean_ms"], "{:.1f}"),
    ("cross-node: 100 subscribers on B, 1 000 ev/s on A: p50 (ms)",
     lambda m: m["cross"]["latency_ms"]["p50"] if "cross" in m else None, "{:.1f}"),
    ("cross-node: p99 (ms)", lambda m: m["cross"]["latency_ms"]["p99"] if "cross" in m else None, "{:.1f}"),
    ("  its publishes, request to 201: p50 (ms)",
     lambda m: m["cross"]["publish_latency_ms"]["p50"] if "cross" in m else None, "{:.1f}"),
    ("  its publishes, request to 201: p99 (ms)",
     lambda m: m["cross"]["publish_latency_ms"]["p99"] if "cross" in m else None, "{:.1f}"),
    ("  B's rewind_cross_node_lag_seconds, mean (ms)",
     lambda m: m.get("cross", {}).get("node_lag_mean_ms"), "{:.1f}"),
    ("  B's rewind_delivery_lag_seconds, mean (ms)",
     lambda m: m.get("cross", {}).get("delivery_lag_mean_ms"), "{:.1f}"),
    ("writer ceiling: batches of 1 000, 16 connections (events/s)", lambda m: m["ceiling"]["events_per_second"],
     "{:,.0f}"),
]

FANOUTS = ["fanout100", "fanout1000", "local", "cross"]


def fmt(format, value):
    return "–" if value is None else format.format(value)


def report(results, args, binary):
    commit = args.commit or subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse",
                                            "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"\n{len(results)} runs, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"commit {commit or 'unknown'}, {os.cpu_count()} cores, {platform.machine()}, binary {binary}\n")
    header = "| | " + " | ".join(f"one node, run {i + 1}" for i in range(len(results))) + " | " + \
        " | ".join(f"two nodes, run {i + 1}" for i in range(len(results))) + " |"
    print(header)
    print("|---" + "|---:" * (2 * len(results)) + "|")
    for label, get, format in ROWS:
        cells = [fmt(format, get(r["one"])) for r in results] + [fmt(format, get(r["two"])) for r in results]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("\nMedians, and the median of the same-run ratios two nodes / one node:\n")
    print("| | one node | two nodes | two / one |")
    print("|---|---:|---:|---:|")
    for label, get, format in ROWS:
        ones = [get(r["one"]) for r in results if get(r["one"]) is not None]
        twos = [get(r["two"]) for r in results if get(r["two"]) is not None]
        ratios = [get(r["two"]) / get(r["one"]) for r in results
                  if get(r["one"]) not in (None, 0) and get(r["two"]) is not None]
        print(f"| {label} | {fmt(format, statistics.median(ones) if ones else None)} | "
              f"{fmt(format, statistics.median(twos) if twos else None)} | "
              f"{'%.2f' % statistics.median(ratios) if ratios else '–'} |")
    problems = []
    for i, r in enumerate(results):
        for name in CONFIGURATIONS:
            for key in FANOUTS:
                f = r[name].get(key)
                if f is None:
                    continue
                bad = {k: f[k] for k in ("publish_errors", "gaps", "duplicates", "reorders", "disconnects",
                                         "incomplete_subscribers") if f[k]}
                if bad:
                    problems.append(f"run {i + 1}, {name} node(s), {key}: {bad}")
            for key in ("ingest", "ceiling"):
                if r[name][key]["errors"]:
                    problems.append(f"run {i + 1}, {name} node(s), {key}: {r[name][key]['errors']} errors")
    print("\nEvery event delivered to every subscriber once and in order, no publish error."
          if not problems else "\nPROBLEMS:\n" + "\n".join(problems))
    cross = [r["two"]["cross"]["latency_ms"]["p99"] for r in results]
    print(f"Cross-node p99 ≤ 20 ms: {'met' if statistics.median(cross) <= 20 else 'NOT met'} "
          f"(median {statistics.median(cross):.1f} ms).")
    return not problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=".build/release/rewind")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres-dir", default=".build/postgres-bench-cluster",
                        help="the throwaway PostgreSQL cluster's directory (started if not running)")
    parser.add_argument("--wait", type=float, default=1200,
                        help="seconds to wait for another benchmark to end before each measurement")
    parser.add_argument("--json-out", help="also write every run's raw figures to this file")
    parser.add_argument("--commit", help="the commit to name in the report (default: git's HEAD, when git runs)")
    parser.add_argument("--latency-only", action="store_true",
                        help="only two nodes, only the same-node and cross-node latencies (to compare binaries); "
                             "prints the raw figures as JSON")
    parser.add_argument("--latency-subscribers", type=int, default=100,
                        help="with --latency-only: subscribers of each latency run (default 100)")
    parser.add_argument("--quick", action="store_true", help="1 s runs, to check the script")
    parser.add_argument("--keep-postgres", action="store_true", help="leave the PostgreSQL cluster running")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    durations = (1, 1) if args.quick else (5, 10)
    runner = Runner(binary, args.wait)
    workdir = tempfile.mkdtemp(prefix="rewind-bench-cluster-")
    cluster = PostgresCluster(args.postgres_dir)
    results = []
    finished = False
    try:
        if args.latency_only:
            for run in range(args.runs):
                results.append(run_configuration(runner, cluster, workdir, run + 1, "two", durations, True,
                                                 args.latency_subscribers))
            finished = True
            print(json.dumps(results))
            return
        for run in range(args.runs):
            order = ["one", "two"] if run % 2 == 0 else ["two", "one"]
            results.append({})
            for name in order:
                print(f"run {run + 1}: {name} node(s)...", file=sys.stderr, flush=True)
                results[-1][name] = run_configuration(runner, cluster, workdir, run + 1, name, durations)
            if args.json_out:
                with open(args.json_out, "w") as out:
                    json.dump(results, out, indent=1)
        finished = True
    finally:
        if not args.keep_postgres:
            cluster.stop()
        if finished:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"the nodes' logs are in {workdir}", file=sys.stderr)
    sys.exit(0 if report(results, args, args.binary) else 1)


if __name__ == "__main__":
    main()
