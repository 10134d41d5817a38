#!/usr/bin/env python3
"""The same `rewind bench` workloads on the two backends, SQLite beside PostgreSQL, in one run.

Usage: scripts/bench-backends.py [--binary PATH] [--reps N] [--quick] [--only LIST] [--cluster DIR] [--results FILE]
  --binary PATH   the rewind binary (default .build/release/rewind; build it with `swift build -c release`)
  --reps N        runs per backend and workload (default 3); the table gives medians
  --quick         shorter runs: ingest 3 s, fan-out 5 s, replay 100 000 events
  --only LIST     comma-separated workloads: ingest, batch, fanout, replay (default: all)
  --cluster DIR   the throwaway PostgreSQL cluster of scripts/postgres-cluster.sh (default .build/postgres-bench);
                  started if it is not running, and stopped at the end if this script started it
  --results FILE  where the JSON lines go (default: a new directory under ${TMPDIR:-/tmp})

Every run starts `rewind serve` afresh, on a new SQLite file or on a new PostgreSQL database of the cluster (fsync
on, synchronous_commit on: a 201 means PostgreSQL's COMMIT returned and its WAL is flushed), on a free loopback
port, with the server's defaults otherwise (SQLite: WAL with synchronous=NORMAL). The backends alternate run by
run, and which goes first alternates rep by rep, so that a slow minute of a noisy machine hits both. Each run's
JSON line, with "server" ("sqlite" or "postgres"), "rep" and "workload" added, goes to the results file; the table
gives per workload and metric both medians and the PostgreSQL/SQLite ratio, then the issue's goals for PostgreSQL,
met or not. A full run takes about 7 minutes on two cores, --quick about 3.

All traffic goes to 127.0.0.1. Every `rewind bench` runs under a time limit; the servers and the cluster are
stopped by PID (through pg_ctl for the cluster) also on Ctrl-C or an error. Standard library only.
"""
import argparse
import datetime
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import rewindtest

ROOT = os.path.dirname(rewindtest.SCRIPTS)
SERVERS = ("sqlite", "postgres")

# The table code of the Nchan harness (metrics per mode, number formats, the machine line), reused as it is.
_spec = importlib.util.spec_from_file_location("bench_table", os.path.join(rewindtest.SCRIPTS, "bench-table.py"))
bench_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_table)


def log(message):
    print(f"[bench-backends {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def workloads(quick, only):
    """(name, mode, arguments, time limit in seconds) per run; @PUB@, @SUB@, @REPLAY_SUB@ and @PID@ are filled in
    per server."""
    ingest, fanout, replay = (3, 5, 100_000) if quick else (10, 10, 1_000_000)
    out = []
    if "ingest" in only:
        for connections in (1, 16, 64):
            out.append((f"ingest-c{connections}", "ingest",
                        ["--publish-url", "@PUB@", "--connections", str(connections), "--duration", str(ingest)],
                        ingest + 60))
    if "batch" in only:
        out.append(("ingest-c16-batch1000", "ingest",
                    ["--publish-url", "@PUB@", "--connections", "16", "--duration", str(ingest), "--batch", "1000"],
                    ingest + 60))
    if "fanout" in only:
        # 64 publishing connections, as the Nchan harness uses at 1 000 events/s.
        out.append(("fanout-1000-x1000", "fanout",
                    ["--publish-url", "@PUB@", "--subscribe-url", "@SUB@", "--subscribers", "1000", "--rate", "1000",
                     "--duration", str(fanout), "--publishers", "64", "--server-pid", "@PID@", "--drain-timeout", "60"],
                    fanout + 150))
    if "replay" in only:
        out.append((f"replay-{replay}", "replay",
                    ["--publish-url", "@PUB@", "--subscribe-url", "@REPLAY_SUB@", "--events", str(replay),
                     "--batch", "1000"],
                    600))
    return out


class Run:
    """One fresh server on one backend, for one `rewind bench` run."""

    def __init__(self, binary, server, work, cluster):
        self.server, self.cluster, self.database = server, cluster, None
        self.directory = tempfile.mkdtemp(prefix=f"{server}.", dir=work)
        if server == "postgres":
            self.database = cluster.database(prefix="rewind_bench")
        self.rewind = rewindtest.Rewind(binary, self.directory, rewindtest.free_port(), db=self.database)

    def __enter__(self):
        self.rewind.start(seconds=60)
        return self

    def __exit__(self, *_):
        self.rewind.stop()
        if self.database is not None:
            try:
                self.cluster.drop_database(self.database)
            except rewindtest.TestFailure as failure:
                log(f"warning: {failure}")
        shutil.rmtree(self.directory, ignore_errors=True)  # a 1 000 000-event SQLite file is large

    def fill(self, argument):
        url = f"http://127.0.0.1:{self.rewind.port}/v1/streams/{{stream}}/events"
        return (argument.replace("@PUB@", url).replace("@SUB@", url)
                .replace("@REPLAY_SUB@", url + "?from=earliest").replace("@PID@", str(self.rewind.process.pid)))


def bench(binary, run, mode, arguments, limit):
    """Runs `rewind bench` against the run's server; returns its JSON object, or {"error": why}."""
    command = ["timeout", "--kill-after=10", str(limit), binary, "bench", mode,
               *[run.fill(a) for a in arguments], "--json"]
    result = subprocess.run(command, capture_output=True, text=True)
    if run.rewind.process.poll() is not None:
        return {"error": f"the server exited during the run ({run.rewind.process.returncode}):\n{run.rewind.log_tail()}"}
    if result.returncode in (124, 137):
        return {"error": f"timed out after {limit} s"}
    if result.returncode != 0:
        return {"error": f"rewind bench {mode} exited {result.returncode}: {result.stderr.strip()[-300:]}"}
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    try:
        return json.loads(lines[-1])
    except (IndexError, ValueError):
        return {"error": "no JSON object on stdout"}


def median(records, path):
    values = [v for v in (bench_table.lookup(r, path) for r in records) if v is not None]
    return statistics.median(values) if values else None


def table(records, notes, commit):
    """The Markdown table of medians and ratios, and the goals; returns its text."""
    order, runs, failed = [], {}, []
    for record in records:
        name = record["workload"]
        if name not in runs:
            order.append(name)
            runs[name] = {server: [] for server in SERVERS}
        (failed if "error" in record else runs[name][record["server"]]).append(record)
    reps = max((len(r) for w in runs.values() for r in w.values()), default=0)
    lines = [
        "# PostgreSQL beside SQLite",
        "",
        f"- Machine: {bench_table.machine()}",
        f"- Date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- Commit: {commit}",
        f"- Medians of {reps} runs, alternating the backends; ratio = PostgreSQL median / SQLite median",
        *[f"- {note}" for note in notes],
    ]
    if failed:
        lines.append(f"- Failed runs (left out): {len(failed)}: " + "; ".join(
            f"{r['workload']} rep {r['rep']} on {r['server']}: {r['error'].splitlines()[0]}" for r in failed))
    lines += ["", "| Workload | Metric | SQLite median | PostgreSQL median | PostgreSQL/SQLite | Better |",
              "| --- | --- | ---: | ---: | ---: | --- |"]
    for name in order:
        sample = next((r for s in SERVERS for r in runs[name][s]), None)
        if sample is None:
            lines.append(f"| {name} | (no successful runs) | n/a | n/a | n/a | |")
            continue
        mode = sample.get("mode", name.split("-")[0])
        title = bench_table.describe(name, mode, sample)
        for label, path, scale, unit, better in bench_table.METRICS.get(mode, []):
            medians = {s: median(runs[name][s], path) for s in SERVERS}
            if all(v is None for v in medians.values()):
                continue
            if label == "requests/s" and sample.get("batch", 1) == 1:
                continue
            if label in ("published", "server RSS after", "latency max", "client CPU", "MB/s"):
                continue  # kept in the JSON lines; the table keeps what the goals and the comparison need
            medians = {s: None if v is None else v * scale for s, v in medians.items()}
            cells = []
            for server in SERVERS:
                cell = bench_table.fmt(medians[server], unit)
                if 0 < len(runs[name][server]) < reps:
                    cell += f" ({len(runs[name][server])} runs)"
                cells.append(cell)
            lines.append(f"| {title} | {label} | {cells[0]} | {cells[1]} | "
                         f"{bench_table.ratio(medians['postgres'], medians['sqlite'])} | {better} |")

    def rate(name, server):
        return median(runs.get(name, {}).get(server, []), ("events_per_second",))

    lines += ["", "Goals for PostgreSQL (issue 12):", ""]
    goals = []
    single_pg, single_lite = rate("ingest-c64", "postgres"), rate("ingest-c64", "sqlite")
    if single_pg is not None and single_lite:
        goals.append(("single-event ingest at 64 connections ≥ 0.5 × SQLite", single_pg / single_lite >= 0.5,
                      f"{single_pg:,.0f} vs {single_lite:,.0f} events/s = {single_pg / single_lite:.2f} ×"))
    batch = rate("ingest-c16-batch1000", "postgres")
    if batch is not None:
        goals.append(("batches of 1 000 ≥ 100 000 events/s", batch >= 100_000, f"{batch:,.0f} events/s"))
    replay_name = next((n for n in order if n.startswith("replay-")), None)
    if replay_name:
        replay_pg, replay_lite = rate(replay_name, "postgres"), rate(replay_name, "sqlite")
        if replay_pg is not None and replay_lite:
            goals.append((f"replay of {replay_name[7:]} ≥ 0.5 × SQLite", replay_pg / replay_lite >= 0.5,
                          f"{replay_pg:,.0f} vs {replay_lite:,.0f} events/s = {replay_pg / replay_lite:.2f} ×"))
    for goal, met, measured in goals:
        lines.append(f"- {goal}: {'met' if met else 'NOT met'} ({measured})")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", default=os.path.join(ROOT, ".build/release/rewind"))
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", default="ingest,batch,fanout,replay")
    parser.add_argument("--cluster", default=os.path.join(ROOT, ".build/postgres-bench"))
    parser.add_argument("--results")
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps must be a positive integer")
    only = set(args.only.split(","))
    unknown = only - {"ingest", "batch", "fanout", "replay"}
    if unknown:
        parser.error(f"--only: unknown workload(s) {', '.join(sorted(unknown))}")
    binary = os.path.abspath(args.binary)
    if not os.access(binary, os.X_OK):
        sys.exit(f"error: {binary} does not exist or is not executable (swift build -c release)")
    help_text = subprocess.run([binary, "bench", "ingest", "--help"], capture_output=True, text=True, timeout=20).stdout
    if "--json" not in help_text:
        sys.exit(f"error: {binary} has no `rewind bench ingest --json`")

    # Fan-out holds 1 000 SSE connections plus the publishers' in the client and in the server.
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(65536, hard)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))

    work = tempfile.mkdtemp(prefix="rewind-bench-backends.")
    results = os.path.abspath(args.results) if args.results else os.path.join(work, "results.jsonl")
    os.makedirs(os.path.dirname(results), exist_ok=True)
    open(results, "w").close()
    was_running = os.path.exists(os.path.join(args.cluster, "data", "postmaster.pid"))
    cluster = rewindtest.PostgresCluster(args.cluster)
    records = []
    try:
        settings = cluster.psql("SELECT current_setting('server_version_num')::int / 10000 || '|' || "
                                "current_setting('fsync') || '|' || current_setting('synchronous_commit')")
        version, fsync, synchronous_commit = settings.strip().split("|")
        if fsync != "on" or synchronous_commit != "on":
            sys.exit(f"error: the cluster runs with fsync={fsync}, synchronous_commit={synchronous_commit}; both must be on")
        log(f"PostgreSQL {version} (fsync {fsync}, synchronous_commit {synchronous_commit}); results: {results}")
        plan = workloads(args.quick, only)
        for name, mode, arguments, limit in plan:
            for rep in range(1, args.reps + 1):
                order = SERVERS if rep % 2 else tuple(reversed(SERVERS))
                for server in order:
                    log(f"{name} rep {rep}: {server}")
                    with Run(binary, server, work, cluster) as run:
                        record = bench(binary, run, mode, arguments, limit)
                    record.update(server=server, rep=rep, workload=name)
                    if "error" in record:
                        log(f"error: {name} rep {rep} on {server}: {record['error']}")
                    records.append(record)
                    with open(results, "a", encoding="utf-8") as f:
                        f.write(json.dumps(record, separators=(",", ":")) + "\n")
    finally:
        if not was_running:
            try:
                cluster.stop()
            except rewindtest.TestFailure as failure:
                log(f"warning: {failure}")
    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown (no git here)"
    notes = [
        f"SQLite: the server's default durability (WAL, synchronous=NORMAL: on disk in the WAL, fsync at checkpoints); "
        f"PostgreSQL {version} on the same machine and disk, fsync on, synchronous_commit on (WAL flushed at every COMMIT)",
        "load generator: rewind bench on the same machine (client, server and PostgreSQL share its cores); "
        "fresh server process and database per run",
    ]
    if args.quick:
        notes.append("--quick: shorter runs (ingest 3 s, fan-out 5 s, replay 100 000 events)")
    text = table(records, notes, commit)
    with open(os.path.join(work, "table.md"), "w", encoding="utf-8") as f:
        f.write(text)
    print(text)
    log(f"results: {results}; table: {os.path.join(work, 'table.md')}")
    failures = sum(1 for r in records if "error" in r)
    if failures:
        sys.exit(f"error: {failures} run(s) failed (their lines carry \"error\")")


if __name__ == "__main__":
    main()
