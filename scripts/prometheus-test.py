#!/usr/bin/env python3
"""deploy/prometheus.yml and deploy/grafana/rewind.json checked against a real Prometheus and a Rewind under load.

Starts Rewind (the built binary, a temporary database, a free loopback port) and Debian's `prometheus` of its own
(temporary storage, loopback listen address, scrape interval 1 s, configuration rendered from deploy/prometheus.yml
with the target replaced). `promtool check config` must pass on the rendered file. While a bounded load runs
(publishers, and SSE subscribers that stay live), it waits for scrapes, then asks Prometheus's HTTP API for every
expression the dashboard uses (`$node` read as `.*`, `$__rate_interval` as 15s): each must return at least one series
with a finite value. A dashboard naming a metric Rewind does not export therefore fails the test (`--plant` adds such
a panel, to see it fail).

Usage: scripts/prometheus-test.py --binary .build/debug/rewind [--plant]
Installs Debian's prometheus with apt-get when it is missing and we are root. Only talks to 127.0.0.1; every request
has a timeout and every loop a bound; stops only the processes it started.
"""
import argparse
import copy
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from rewindtest import (Load, Rewind, TestFailure, free_port, http_get, http_request_or_fail,  # noqa: E402
                        stop_process, wait_until)

SUBSCRIBERS = 4
LOAD_SECONDS = 90  # the longest the load runs; it stops as soon as the queries are done


def ensure_installed():
    if shutil.which("prometheus") and shutil.which("promtool"):
        return
    if os.geteuid() != 0:
        raise TestFailure("prometheus is missing; install Debian's prometheus")
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)


def render_config(workdir, rewind_port):
    """deploy/prometheus.yml with the test's target and a 1 s scrape interval; everything else as shipped."""
    with open(os.path.join(ROOT, "deploy", "prometheus.yml")) as shipped:
        text = shipped.read()
    if '"127.0.0.1:8080"' not in text:
        raise TestFailure("deploy/prometheus.yml no longer names the target 127.0.0.1:8080 that this test replaces")
    text = text.replace('"127.0.0.1:8080"', f'"127.0.0.1:{rewind_port}"')
    text = re.sub(r"scrape_interval: \S+", "scrape_interval: 1s", text)
    text = re.sub(r"evaluation_interval: \S+", "evaluation_interval: 1s", text)
    path = os.path.join(workdir, "prometheus.yml")
    with open(path, "w") as out:
        out.write(text)
    return path


def dashboard_expressions(dashboard):
    """Every PromQL expression in the dashboard: panel targets (also inside rows) and query variables."""
    found = []

    def panels(items):
        for panel in items:
            yield panel
            yield from panels(panel.get("panels", []))

    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                found.append((panel.get("title", "?"), target["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if isinstance(query, dict):
            query = query.get("query")
        if variable.get("type") == "query" and query:
            found.append((f"variable {variable['name']}", query))
    return found


def concrete(expression):
    """The expression Grafana would send: its variables replaced by what "All" and the rate interval mean."""
    return (expression.replace("$__rate_interval", "15s").replace("${node}", ".*").replace("$node", ".*"))


def prometheus_api(port, path, params):
    _, answer, _ = http_request_or_fail(port, "GET", f"{path}?{urllib.parse.urlencode(params)}", timeout=10)
    body = json.loads(answer or b"{}")
    if body.get("status") != "success":
        raise TestFailure(f"Prometheus refused {params}: {body.get('errorType')}: {body.get('error')}")
    return body["data"]


def label_values(port, match):
    """label_values(metric, label): Grafana asks the series API, which Prometheus answers with the label sets."""
    found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", match)
    if not found:
        raise TestFailure(f"the test does not understand the variable query {match}")
    series = prometheus_api(port, "/api/v1/series", {"match[]": found.group(1)})
    return [s.get(found.group(2)) for s in series if found.group(2) in s]


def finite_values(data):
    values = []
    for series in data.get("result", []):
        value = series.get("value", [None, "NaN"])[1]
        try:
            number = float(value)
        except ValueError:
            continue
        if not math.isnan(number) and not math.isinf(number):
            values.append(number)
    return values


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--plant", action="store_true",
                        help="add a panel naming a metric Rewind does not export: the test must then fail")
    args = parser.parse_args()
    ensure_installed()
    binary = os.path.abspath(args.binary)
    with open(os.path.join(ROOT, "deploy", "grafana", "rewind.json")) as file:
        dashboard = json.load(file)
    if args.plant:
        planted = copy.deepcopy(dashboard["panels"][0])
        planted["title"] = "Planted: a metric nobody exports"
        planted["targets"] = [{"refId": "A", "expr": 'sum by (node) (rate(rewind_publishes_total{node=~"$node"}[$__rate_interval]))'}]
        dashboard["panels"].append(planted)
    expressions = dashboard_expressions(dashboard)
    if len(expressions) < 10:
        raise TestFailure(f"found only {len(expressions)} expressions in the dashboard")

    workdir = tempfile.mkdtemp(prefix="rewind-prometheus-")
    rewind_port, prometheus_port = free_port(), free_port()
    rewind = Rewind(binary, workdir, rewind_port)
    prometheus = None
    load = None
    try:
        config = render_config(workdir, rewind_port)
        for path in (os.path.join(ROOT, "deploy", "prometheus.yml"), config):
            check = subprocess.run(["promtool", "check", "config", path], capture_output=True, text=True)
            if check.returncode != 0:
                raise TestFailure(f"promtool check config {path} failed:\n{check.stdout}{check.stderr}")
        print("promtool check config: passed for deploy/prometheus.yml as shipped and as rendered for the test")

        rewind.start()
        prometheus = subprocess.Popen(
            ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={workdir}/tsdb",
             f"--web.listen-address=127.0.0.1:{prometheus_port}", "--storage.tsdb.retention.time=1h"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "prometheus.log"), "wb"))
        wait_until(lambda: (http_get(prometheus_port, "/-/ready") or (0,))[0] == 200, 30, "Prometheus to be ready")

        # Publishers in one thread, and SSE subscribers that stay live and read what arrives; bounded in time.
        load = Load(rewind_port, [f"load-{n}" for n in range(3)], "/v1/events?stream=load-*",
                    subscribers=SUBSCRIBERS, most=5, pause=0.01, seconds=LOAD_SECONDS).start()

        def target_up():
            targets = prometheus_api(prometheus_port, "/api/v1/targets", {})["activeTargets"]
            return any(t["health"] == "up" for t in targets)

        wait_until(target_up, 20, "Prometheus to scrape Rewind successfully")

        def has_rates():
            data = prometheus_api(prometheus_port, "/api/v1/query",
                                  {"query": "sum(rate(rewind_deliveries_total[15s])) > 0"})
            return bool(finite_values(data))

        wait_until(has_rates, 25, "a delivery rate from several scrapes under load")
        if load.errors:
            raise TestFailure("the load failed: " + "; ".join(load.errors[:3]))

        failures = []
        for title, expression in expressions:
            if expression.startswith("label_values("):
                values = label_values(prometheus_port, expression)
                ok = bool(values)
                shown = f"{len(values)} value(s): {', '.join(sorted(values))}"
            else:
                data = prometheus_api(prometheus_port, "/api/v1/query", {"query": concrete(expression)})
                values = finite_values(data)
                ok = bool(values)
                shown = f"{len(data.get('result', []))} series, e.g. {values[0]:.6g}" if values else "no finite value"
            print(f"{'ok  ' if ok else 'FAIL'} {title}: {expression}\n      -> {shown}")
            if not ok:
                failures.append(f"{title}: {expression}")
        print(f"load: {load.published} events published, {load.received()} received by {SUBSCRIBERS} subscribers")
        if failures:
            raise TestFailure(f"{len(failures)} dashboard expression(s) returned no data:\n  " + "\n  ".join(failures))
        print(f"prometheus-test: all {len(expressions)} dashboard expressions returned data")
    finally:
        if load is not None:
            load.finish()
        if prometheus is not None:
            stop_process(prometheus)
        rewind.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    try:
        main()
    except TestFailure as failure:
        print(f"prometheus-test: FAILED: {failure}", file=sys.stderr)
        sys.exit(1)
