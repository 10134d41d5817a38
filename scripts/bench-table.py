#!/usr/bin/env python3
"""Prints the Markdown table of a Rewind-versus-Nchan benchmark from its JSON lines.

Usage: scripts/bench-table.py [--backend sqlite|postgres] [--note TEXT]... RESULTS.jsonl

Each line is one `rewind bench ... --json` object with "server" ("rewind" or "nchan") and "rep" added (and
"workload", the harness's name for the run; without it the workload is named from the object's own fields).
A line with "error" is a failed run: it is counted, not used. The table has one row per workload and metric:
the median over the runs of each server, and Rewind's median divided by Nchan's. A server without runs of a
workload (Nchan has no batch publish) shows n/a. Standard library only.
"""

import argparse
import datetime
import json
import os
import statistics
import sys

SERVERS = ("rewind", "nchan")

# Per mode: (label, path into the object, scale, unit, better). better: "higher", "lower" or "" (a count to read).
METRICS = {
    "ingest": [
        ("events/s", ("events_per_second",), 1, "", "higher"),
        ("requests/s", ("requests_per_second",), 1, "", "higher"),
        ("latency p50", ("latency_ms", "p50"), 1, "ms", "lower"),
        ("latency p99", ("latency_ms", "p99"), 1, "ms", "lower"),
        ("latency p99.9", ("latency_ms", "p999"), 1, "ms", "lower"),
        ("errors", ("errors",), 1, "", "lower"),
        ("client CPU", ("client_cpu_seconds",), 1, "s", ""),
    ],
    "fanout": [
        ("deliveries/s", ("deliveries_per_second",), 1, "", "higher"),
        ("published", ("published",), 1, "", ""),
        ("latency p50", ("latency_ms", "p50"), 1, "ms", "lower"),
        ("latency p99", ("latency_ms", "p99"), 1, "ms", "lower"),
        ("latency p99.9", ("latency_ms", "p999"), 1, "ms", "lower"),
        ("latency max", ("latency_ms", "max"), 1, "ms", "lower"),
        ("gaps", ("gaps",), 1, "", "lower"),
        ("duplicates", ("duplicates",), 1, "", "lower"),
        ("reorders", ("reorders",), 1, "", "lower"),
        ("disconnects", ("disconnects",), 1, "", "lower"),
        ("server RSS after", ("server_rss_kb_after",), 1 / 1024, "MiB", "lower"),
        ("server RSS max", ("server_rss_kb_max",), 1 / 1024, "MiB", "lower"),
        ("server CPU", ("server_cpu_seconds",), 1, "s", "lower"),
        ("server CPU per delivery", ("server_cpu_us_per_delivery",), 1, "µs", "lower"),
        ("client CPU", ("client_cpu_seconds",), 1, "s", ""),
    ],
    "replay": [
        ("events/s", ("events_per_second",), 1, "", "higher"),
        ("MB/s", ("mb_per_second",), 1, "", "higher"),
        ("seconds", ("seconds",), 1, "s", "lower"),
        ("received", ("received",), 1, "", ""),
        # The sqlite3 shell reading the same rows of the same file to /dev/null (SQLite runs only), and Rewind's
        # events/s divided by the shell's in the same run.
        ("sqlite3 shell events/s", ("sqlite3_shell_events_per_second",), 1, "", "higher"),
        ("Rewind / sqlite3 shell", ("replay_vs_sqlite3_shell",), 1, "×", "higher"),
    ],
    "idle": [
        ("RSS per connection", ("rss_kb_per_connection",), 1, "KiB", "lower"),
        ("server RSS after", ("server_rss_kb_after",), 1 / 1024, "MiB", "lower"),
        ("open connections", ("open",), 1, "", ""),
    ],
}


def workload_name(record):
    """The harness's name, else one made from the object's own fields."""
    if record.get("workload"):
        return str(record["workload"])
    mode = record.get("mode", "?")
    if mode == "ingest":
        name = f"ingest-c{record.get('connections')}"
        return name + (f"-batch{record['batch']}" if record.get("batch", 1) > 1 else "")
    if mode == "fanout":
        return f"fanout-{record.get('subscribers')}-x{record.get('rate')}"
    if mode == "replay":
        return f"replay-{record.get('events')}"
    if mode == "idle":
        return f"idle-{record.get('connections')}"
    return mode


def describe(name, mode, sample):
    """A reader's title for a workload, from one of its objects."""
    if mode == "ingest":
        connections = sample.get("connections")
        text = f"ingest, {connections} connection{'' if connections == 1 else 's'}"
        if sample.get("batch", 1) > 1:
            text += f", batches of {sample['batch']}"
        return text
    if mode == "fanout":
        return f"fanout, {sample.get('subscribers')} subscribers × {sample.get('rate')} ev/s"
    if mode == "replay":
        return f"replay {sample.get('events'):,} events" if isinstance(sample.get("events"), int) else name
    if mode == "idle":
        return f"idle, {sample.get('connections'):,} connections" if isinstance(sample.get("connections"), int) else name
    return name


def lookup(record, path):
    value = record
    for key in path:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def fmt(value, unit=""):
    if value is None:
        return "n/a"
    magnitude = abs(value)
    if float(value).is_integer():
        text = f"{int(value):,}"
    elif magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    elif magnitude == 0 or magnitude >= 0.01:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}" if unit else text


def ratio(a, b):
    if a is None or b is None:
        return "n/a"
    if b == 0:
        return "1.00" if a == 0 else "∞"
    return f"{a / b:.2f}"


def machine():
    cores = os.cpu_count() or 0
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    memory = "unknown memory"
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    memory = f"{int(line.split()[1]) / 1048576:.1f} GiB memory"
                    break
    except OSError:
        pass
    return f"{cores} cores ({model}), {memory}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="the JSON lines file")
    parser.add_argument("--note", action="append", default=[], help="a line for the header (repeatable)")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite", help="Rewind's log in the runs")
    args = parser.parse_args()

    records, failed, unreadable = [], [], 0
    with open(args.results, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                record = json.loads(line)
            except ValueError:
                unreadable += 1
                print(f"warning: {args.results}:{number} is not JSON", file=sys.stderr)
                continue
            if not isinstance(record, dict) or record.get("server") not in SERVERS:
                unreadable += 1
                print(f"warning: {args.results}:{number} has no \"server\" of {SERVERS}", file=sys.stderr)
                continue
            (failed if "error" in record else records).append(record)

    # Workloads in the order they first appear; per workload and server, the runs.
    order, runs, modes, samples = [], {}, {}, {}
    for record in records:
        name = workload_name(record)
        if name not in runs:
            order.append(name)
            runs[name] = {server: [] for server in SERVERS}
            modes[name] = record.get("mode", "?")
            samples[name] = record
        runs[name][record["server"]].append(record)
    for record in failed:
        name = workload_name(record)
        if name not in runs:
            order.append(name)
            runs[name] = {server: [] for server in SERVERS}
            modes[name] = record.get("mode") or name.split("-")[0]
            samples[name] = record

    rep_counts = sorted({len(r) for w in runs.values() for r in w.values() if r})
    most_reps = rep_counts[-1] if rep_counts else 0
    print("# Rewind vs Nchan")
    print()
    print(f"- Machine: {machine()}")
    print(f"- Date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}")
    durable = ("PostgreSQL, fsync on, synchronous_commit on" if args.backend == "postgres"
               else "SQLite WAL, synchronous=NORMAL")
    print(f"- Rewind: durable ({durable}); Nchan: in-memory only")
    runs_text = f"{most_reps} run{'' if most_reps == 1 else 's'}"
    if len(rep_counts) > 1:
        runs_text += " (fewer where marked)"
    print(f"- Medians of {runs_text}, alternating Rewind and Nchan; ratio = Rewind median / Nchan median")
    for note in args.note:
        print(f"- {note}")
    if failed:
        print(f"- Failed runs (left out): {len(failed)}: " + "; ".join(
            f"{workload_name(r)} rep {r.get('rep')} on {r['server']}: {r['error']}" for r in failed))
    if unreadable:
        print(f"- Unreadable lines (left out): {unreadable}")
    print()
    print("| Workload | Metric | Rewind median | Nchan median | Rewind/Nchan | Better |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for name in order:
        mode = modes[name]
        title = describe(name, mode, samples[name])
        metrics = METRICS.get(mode, [])
        shown = False
        for label, path, scale, unit, better in metrics:
            medians = {}
            for server in SERVERS:
                values = [v for v in (lookup(r, path) for r in runs[name][server]) if v is not None]
                medians[server] = statistics.median(values) * scale if values else None
            if medians["rewind"] is None and medians["nchan"] is None:
                continue  # a field this version of `rewind bench` does not report
            if label == "requests/s" and all(r.get("batch", 1) == 1 for s in SERVERS for r in runs[name][s]):
                continue  # equal to events/s without batches
            counts = {s: len(runs[name][s]) for s in SERVERS}
            cells = []
            for server in SERVERS:
                cell = fmt(medians[server], unit) if counts[server] else "n/a"
                if 0 < counts[server] < most_reps:
                    cell += f" ({counts[server]} runs)"  # fewer runs than the others: some failed
                cells.append(cell)
            print(f"| {title} | {label} | {cells[0]} | {cells[1]} | {ratio(medians['rewind'], medians['nchan'])} | {better} |")
            shown = True
        if not shown:
            print(f"| {title} | (no successful runs) | n/a | n/a | n/a | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
