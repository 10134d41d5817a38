#!/usr/bin/env python3
"""The web console in a real browser: Rewind serves its console at `/` and headless Chromium (driven through the
DevTools protocol) uses it like a person would. Checks:

- the streams view lists the streams with their counts and last ids;
- a live tail on a pattern shows every event published through the console's form and through the API exactly once,
  in id order, with its stream and commit time filled in;
- when the server is stopped (SIGTERM) the tail says "reconnecting" with the last id, and after the server is
  started again on the same port and database it goes on without a gap or duplicate;
- `rewind.reset` shows as a banner; history pages backwards, opens one event and copies its id; the page fits a
  narrow window;
- the overview (the first page) says what to do first while nothing is published; under a load of publishes and
  SSE subscribers that the test generates, its charts read /metrics and move: publish rate, deliveries, live
  subscribers, publish latency and delivery lag, log head and size show values above zero with their units, the
  axes are labelled with units, and it fits a narrow window; readings with a `node` label are kept per node; the
  streams table draws a sparkline per stream;
- with auth on (`--jwt-secret`): without a token the console shows the 401 message; with a subscribe-only token
  the tail works and publishing shows the 403 message (skipped, and said so, when the binary has no `rewind token`).

Screenshots of each view go to --output (default ci-output/console/).

Usage: scripts/console-test.py --binary .build/debug/rewind [--output ci-output/console]
Standard library only; only talks to 127.0.0.1; every wait is bounded; stops only the processes it started.
"""
import argparse
import contextlib
import json
import os
import shutil
import subprocess
import time

from devtools import start_chromium
from rewindtest import Load, Rewind, TestFailure, free_port, http_request_or_fail, scratch_directory, wait_until

WIDE = (1280, 900)
NARROW = (390, 844)


def api(port, method, path, body=None, headers=None, token=None):
    """(status, parsed JSON or text) of one request to Rewind."""
    headers = dict(headers or {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    status, payload, _ = http_request_or_fail(port, method, path, body=body, headers=headers, timeout=10)
    try:
        return status, json.loads(payload)
    except ValueError:
        return status, payload.decode(errors="replace")


def publish_api(port, stream, data, event_type=None, token=None):
    """Publishes one JSON event through the API; returns its id."""
    body = {"data": data} if event_type is None else {"type": event_type, "data": data}
    status, answer = api(port, "POST", f"/v1/streams/{stream}/events", json.dumps(body),
                         {"Content-Type": "application/json"}, token)
    if status != 201:
        raise TestFailure(f"publishing to {stream} through the API answered {status}: {answer}")
    return answer["first_id"]


class Console:
    """The console page in the browser, read and operated through its DOM like a person through the screen."""

    def __init__(self, devtools, port, output):
        self.devtools = devtools
        self.port = port
        self.output = output
        self.screenshots = []

    def js(self, expression):
        return self.devtools.evaluate(expression)

    def element(self, element_id):
        return f"document.getElementById({json.dumps(element_id)})"

    def text(self, element_id):
        return self.js(f"{self.element(element_id)}.textContent")

    def visible(self, element_id):
        return self.js(f"!{self.element(element_id)}.hidden")

    def fill(self, element_id, value):
        self.js(f"(() => {{ const e = {self.element(element_id)}; e.value = {json.dumps(value)}; "
                f"e.dispatchEvent(new Event('input', {{bubbles: true}})); }})()")

    def click(self, element_id):
        if self.js(f"{self.element(element_id)}.disabled"):
            raise TestFailure(f"button #{element_id} is disabled")
        self.js(f"{self.element(element_id)}.click()")

    def open(self, fresh=False):
        """Loads the console; `fresh` also forgets this tab's token first."""
        self.devtools.call("Page.navigate", url=f"http://127.0.0.1:{self.port}/")
        wait_until(lambda: self.js("document.readyState === 'complete' && !!window.rewindConsole"), 30,
                   "the console page to load (GET / and its script)")
        if fresh:
            self.js("sessionStorage.clear()")
            self.devtools.call("Page.reload")
            time.sleep(0.3)
            wait_until(lambda: self.js("document.readyState === 'complete' && !!window.rewindConsole"), 30,
                       "the console page to load again")

    def view(self, name):
        self.js(f"location.hash = '#{name}'")
        wait_until(lambda: self.visible(f"view-{name}"), 5, f"the {name} view to show")

    def viewport(self, size):
        width, height = size
        self.devtools.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1,
                           mobile=width < 600)

    def screenshot(self, name):
        path = os.path.join(self.output, f"console-{name}.png")
        time.sleep(0.3)  # let the last render settle
        self.devtools.screenshot(path)
        self.screenshots.append(path)

    # The live tail ------------------------------------------------------------------------------------------------

    def tail_state(self):
        return self.js("({state: document.getElementById('tail-state').dataset.state || '', "
                       "text: document.getElementById('tail-state').textContent})")

    def wait_tail_state(self, state, seconds, what):
        def reached():
            current = self.tail_state()
            if current["state"] == "closed" and state != "closed":
                raise TestFailure(f"the tail closed while waiting for {what}: {current['text']}")
            return current if current["state"] == state else None
        try:
            return wait_until(reached, seconds, what)
        except TestFailure as failure:
            raise TestFailure(f"{failure}; the tail says {self.tail_state()['text']!r}") from None

    def tail_rows(self):
        """The rows of the tail, oldest first: id, stream, type, time text and data."""
        rows = self.js("""[...document.querySelectorAll('#tail-events > li')].map((li) => ({
            id: Number(li.dataset.id), stream: li.querySelector('.stream').textContent,
            type: li.querySelector('.type').textContent, time: li.querySelector('.time').textContent,
            data: li.querySelector('pre').textContent, duplicate: li.classList.contains('duplicate')}))""")
        return list(reversed(rows))

    def start_tail(self, streams, after="", types=""):
        self.view("tail")
        self.fill("tail-streams", streams)
        self.fill("tail-types", types)
        self.fill("tail-after", after)
        self.click("tail-start")

    def wait_tail_rows(self, expected, seconds=20):
        """Waits until the tail shows exactly the `expected` ids (oldest first) with their details, or fails
        naming the difference."""
        def complete():
            rows = self.tail_rows()
            return rows if [r["id"] for r in rows] == expected and all(r["time"].startswith("committed")
                                                                        for r in rows) else None
        try:
            return wait_until(complete, seconds, f"the tail to show ids {expected}", interval=0.2)
        except TestFailure:
            rows = self.tail_rows()
            shown = [r["id"] for r in rows]
            problems = [f"the tail shows ids {shown}, expected exactly {expected} (oldest first)"]
            missing = [i for i in expected if i not in shown]
            extra = [i for i in shown if i not in expected]
            duplicated = sorted({i for i in shown if shown.count(i) > 1})
            for name, ids in (("missing", missing), ("not published", extra), ("duplicated", duplicated)):
                if ids:
                    problems.append(f"{name}: {ids}")
            if shown == expected:
                problems.append("rows without a commit time: "
                                f"{[r['id'] for r in rows if not r['time'].startswith('committed')]}")
            problems.append(f"tail state: {self.tail_state()['text']!r}")
            raise TestFailure("; ".join(problems)) from None

    # Publishing through the form ------------------------------------------------------------------------------------

    def publish_form(self, stream, data, event_type="", key="", text=False):
        """Publishes through the form; returns (status text, assigned first id or None)."""
        self.view("publish")
        self.fill("publish-stream", stream)
        self.fill("publish-type", event_type)
        self.fill("publish-key", key)
        self.js(f"document.querySelector('input[name=format][value={'text' if text else 'json'}]').click()")
        self.fill("publish-data", data)
        self.js("document.getElementById('publish-result').textContent = ''")
        self.click("publish-submit")
        message = wait_until(lambda: self.text("publish-result"), 10, "the publish form's answer")
        assigned = self.js("document.getElementById('publish-result').dataset.id || null")
        return message, int(assigned) if assigned else None


def check_streams_view(console, expected_counts):
    console.view("streams")

    def listed():
        rows = console.js("""[...document.querySelectorAll('#streams-rows tr')].map((tr) => ({
            name: tr.dataset.stream, count: Number(tr.children[1].textContent),
            last: tr.children[2].textContent, rate: tr.children[4].textContent}))""")
        counts = {row["name"]: row["count"] for row in rows}
        return rows if all(counts.get(name) == count for name, count in expected_counts.items()) else None
    try:
        return wait_until(listed, 10, f"the streams view to list {expected_counts}", interval=0.3)
    except TestFailure as failure:
        raise TestFailure(f"{failure}; it shows {console.text('streams-rows')!r}, status "
                          f"{console.text('streams-status')!r}") from None


def overview_legend(console):
    """{chart id: {series label: latest value or None}}, and the y-axis labels of each chart."""
    return console.js("""Object.fromEntries([...document.querySelectorAll('#overview-charts figure')].map((f) => [
        f.dataset.chart, {
          values: Object.fromEntries([...f.querySelectorAll('.legend li')].map((li) => [
            li.dataset.series, li.dataset.value === '' ? null : Number(li.dataset.value)])),
          shown: [...f.querySelectorAll('.legend li .value')].map((v) => v.textContent),
          axis: [...f.querySelectorAll('text.tick.y')].map((t) => t.textContent),
          times: [...f.querySelectorAll('text.tick.x')].map((t) => t.textContent),
          lines: f.querySelectorAll('path.line').length}]))""")


def run_overview(args, binary, workdir, stack, console_factory):
    """The overview on a fresh server: the empty state, then the charts moving under a load this test generates."""
    port = free_port()
    rewind = Rewind(binary, os.path.join(workdir, "overview"), port)
    os.makedirs(os.path.join(workdir, "overview"), exist_ok=True)
    stack.callback(rewind.stop)
    rewind.start()
    devtools = start_chromium(os.path.join(workdir, "overview"), stack)
    console = console_factory(devtools, port)
    console.viewport(WIDE)
    console.open(fresh=True)
    if not console.visible("view-overview"):
        raise TestFailure("the console does not open on the overview")
    wait_until(lambda: console.visible("overview-empty"), 10, "the overview's empty state on a server with no events")
    empty = console.text("overview-empty")
    if "Publish" not in empty or f"http://127.0.0.1:{port}/v1/streams/demo/events" not in empty:
        raise TestFailure(f"the empty state does not say how to publish a first event: {empty!r}")
    console.screenshot("overview-empty")

    # Publishes to a few streams and keeps SSE subscribers reading them until stopped (at most 90 s).
    load = Load(port, ["load.orders", "load.chat", "load.audit"], "/v1/events?stream=load.*", subscribers=3).start()
    stack.callback(load.finish)
    expected_units = {"publish-rate": "/s", "deliveries": "/s", "publish-latency": "s", "delivery-lag": "s",
                      "log-size": "B"}

    def moving():
        charts = overview_legend(console)
        wanted = {("publish-rate", "events"), ("publish-rate", "requests"), ("deliveries", "deliveries"),
                  ("subscribers", "live"), ("publish-latency", "p50"), ("publish-latency", "p99"),
                  ("delivery-lag", "p99"), ("log-head", "head"), ("log-size", "size")}
        for chart, series in wanted:
            value = charts.get(chart, {}).get("values", {}).get(series)
            if value is None or value <= 0:
                return None
        return charts if charts["subscribers"]["values"]["live"] >= 3 else None
    try:
        charts = wait_until(moving, 40, "the overview's charts to show the load", interval=0.5)
    except TestFailure as failure:
        raise TestFailure(f"{failure}; the charts show {overview_legend(console)}; load errors {load.errors}") from None
    if load.errors:
        raise TestFailure(f"the load failed: {load.errors[:3]}")
    first_head = charts["log-head"]["values"]["head"]
    wait_until(lambda: overview_legend(console)["log-head"]["values"]["head"] > first_head, 10,
               "the log head chart to move on the next reading")
    time.sleep(12)  # more readings, so the lines have some length in the screenshots
    charts = overview_legend(console)
    for chart, unit in expected_units.items():
        axis = charts[chart]["axis"]
        if not axis or not all(label.endswith(unit) for label in axis if label not in ("0", "0 ms")):
            raise TestFailure(f"the {chart} chart's y axis is not labelled in {unit}: {axis}")
        if not all(text.endswith(unit) for text in charts[chart]["shown"]):
            raise TestFailure(f"the {chart} chart's values are shown without their unit: {charts[chart]['shown']}")
    for chart, figures in charts.items():
        if figures["lines"] == 0 or not figures["times"]:
            raise TestFailure(f"the {chart} chart draws no line or no time axis: {figures}")
    if console.visible("overview-empty"):
        raise TestFailure("the empty state still shows while events are published")
    console.screenshot("overview")

    # The streams table: a sparkline of events per minute per stream, from the counts it polls.
    console.view("streams")
    def sparklines():
        lines = console.js("""[...document.querySelectorAll('#streams-rows tr')].map((tr) => ({
            name: tr.dataset.stream, label: tr.querySelector('svg.sparkline')?.getAttribute('aria-label') || '',
            path: tr.querySelector('svg.sparkline path.line')?.getAttribute('d') || ''}))""")
        return lines if len(lines) == 3 and all(" now " in l["label"] and l["path"].count("L") >= 1
                                                 and not l["label"].endswith("now 0") for l in lines) else None
    try:
        wait_until(sparklines, 30, "a moving sparkline for each loaded stream", interval=0.5)
    except TestFailure as failure:
        raise TestFailure(f"{failure}; the table shows {console.text('streams-rows')!r}") from None
    console.screenshot("streams-sparklines")

    console.viewport(NARROW)
    console.view("overview")
    time.sleep(2.5)
    overflow = console.js("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    if overflow > 2:
        raise TestFailure(f"the overview is {overflow}px wider than a narrow window")
    narrow = overview_legend(console)
    if any(f["lines"] == 0 for f in narrow.values()):
        raise TestFailure(f"a chart lost its lines in the narrow window: {narrow}")
    console.screenshot("overview-narrow")
    console.viewport(WIDE)
    load.finish()

    # Several nodes: readings with a `node` label are kept apart, one line per node (the page's own module on two
    # made-up readings; this server exports no node label yet).
    nodes = console.js("""(async () => {
        const { MetricsHistory } = await import('/console/metrics.js');
        const history = new MetricsHistory();
        const reading = (a, b) => `rewind_events_appended_total{node="a"} ${a}\\nrewind_events_appended_total{node="b"} ${b}\\n`;
        history.add(0, reading(0, 0));
        history.add(2000, reading(20, 40));
        return {nodes: history.nodes(), a: history.rate('a', 'events').at(-1)[1], b: history.rate('b', 'events').at(-1)[1]};
    })()""")
    if nodes != {"nodes": ["a", "b"], "a": 10, "b": 20}:
        raise TestFailure(f"readings of two nodes are not kept apart: {nodes}")
    print(f"overview: charts moved with {load.published} events published and 3 subscribers; units on every axis")


def run_without_auth(args, binary, workdir, stack, console_factory):
    port = free_port()
    # console.pruned keeps only its last 2 events, so that a cursor before them gets rewind.gap.
    rewind = Rewind(binary, workdir, port, ["--stream-retention", "console.pruned:max-events=2",
                                            "--maintenance-interval", "1s"])
    stack.callback(rewind.stop)
    rewind.start()

    pruned = [publish_api(port, "console.pruned", f"old {n}") for n in range(5)]
    # Some history, so that every view has something to show.
    seeded = [publish_api(port, "console.orders", {"order": n, "total": 9.5 * n}, "order.created")
              for n in range(1, 31)]
    orders = list(seeded)  # ids of console.orders, for the history checks
    seeded.append(publish_api(port, "console.chat", "hello from the API"))

    devtools = start_chromium(workdir, stack)
    with contextlib.suppress(TestFailure):  # without it, "Copy id" falls back to selecting the id
        devtools.call("Browser.grantPermissions", origin=f"http://127.0.0.1:{port}",
                      permissions=["clipboardReadWrite", "clipboardSanitizedWrite"])
    console = console_factory(devtools, port)
    console.viewport(WIDE)
    console.open(fresh=True)
    for path, content_type in (("/", "text/html"), ("/console/app.js", "text/javascript"),
                               ("/console/style.css", "text/css")):
        status, _ = api(port, "GET", path)
        if status != 200:
            raise TestFailure(f"GET {path} answered {status}")

    check_streams_view(console, {"console.orders": 30, "console.chat": 1})
    unlabelled = console.js("""[...document.querySelectorAll('input, select, textarea, button')].filter((e) =>
        !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim()).map((e) => e.id || e.outerHTML)""")
    if unlabelled:
        raise TestFailure(f"controls without a label or text: {unlabelled}")

    # Live tail on a pattern, from now on.
    console.start_tail("console.*")
    console.wait_tail_state("live", 15, "the tail to be live")
    expected = []
    message, first = console.publish_form("console.orders", '{"order": 100, "note": "through the form"}',
                                          "order.created", key="form-1")
    if first is None:
        raise TestFailure(f"the publish form did not show an assigned id: {message!r}")
    expected.append(first)
    orders.append(first)
    message, again = console.publish_form("console.orders", '{"order": 100, "note": "through the form"}',
                                          "order.created", key="form-1")
    if again != first or "Already published" not in message:
        raise TestFailure(f"publishing the same idempotency key again should show id {first} as already published; "
                          f"the form says {message!r}")
    message, second = console.publish_form("console.chat", "a line of text\nand another", "note", text=True)
    if second is None:
        raise TestFailure(f"the publish form did not show an assigned id for text: {message!r}")
    expected.append(second)
    console.screenshot("publish")
    for n in range(3):
        expected.append(publish_api(port, "console.chat", {"n": n, "via": "api"}))
    expected.append(publish_api(port, "console.orders", {"order": 101}, "order.paid"))
    orders.append(expected[-1])
    paid = expected[-1]
    publish_api(port, "other", "not in the tail")  # outside the pattern: must not show
    console.view("tail")
    rows = console.wait_tail_rows(expected)
    by_id = {row["id"]: row for row in rows}
    if by_id[first]["stream"] != "console.orders" or by_id[first]["type"] != "order.created":
        raise TestFailure(f"row {first} should be console.orders / order.created, shows {by_id[first]}")
    if '"order": 100' not in by_id[first]["data"] or "\n" not in by_id[first]["data"]:
        raise TestFailure(f"row {first} should show pretty-printed JSON, shows {by_id[first]['data']!r}")
    if by_id[second]["data"] != "a line of text\nand another":
        raise TestFailure(f"row {second} should show the text as sent, shows {by_id[second]['data']!r}")
    console.screenshot("tail")

    # Server restart: reconnecting with the last id, then on without a gap.
    last = expected[-1]
    rewind.stop_gracefully()
    state = console.wait_tail_state("reconnecting", 15, "the tail to show reconnecting after SIGTERM")
    if f"last id {last}" not in state["text"]:
        raise TestFailure(f"while reconnecting the tail should name the last id {last}: {state['text']!r}")
    console.screenshot("reconnecting")
    time.sleep(1)
    rewind.start()
    for n in range(3):
        expected.append(publish_api(port, "console.chat", {"n": n, "after": "restart"}))
    expected.append(publish_api(port, "console.orders", {"order": 102}, "order.created"))
    orders.append(expected[-1])
    console.wait_tail_state("live", 20, "the tail to be live again after the restart")
    console.wait_tail_rows(expected)
    duplicates = console.js("window.rewindConsole.tail.duplicates")
    if duplicates:
        raise TestFailure(f"the tail received {duplicates} duplicate ids")

    # A narrow window: nothing wider than the screen.
    console.viewport(NARROW)
    time.sleep(0.5)
    overflow = console.js("document.documentElement.scrollWidth - window.innerWidth")
    if overflow > 0:
        raise TestFailure(f"on a {NARROW[0]} px wide window the tail view is {overflow} px too wide")
    console.screenshot("narrow")
    console.viewport(WIDE)

    # Pause and resume: nothing shows while paused, everything after resuming.
    console.click("tail-pause")
    console.wait_tail_state("paused", 5, "the tail to show paused")
    expected.append(publish_api(port, "console.chat", "while paused"))
    time.sleep(1)
    if expected[-1] in [row["id"] for row in console.tail_rows()]:
        raise TestFailure("an event published while paused showed before resuming")
    console.click("tail-pause")
    console.wait_tail_rows(expected)

    # A cursor beyond the log's head: the rewind.reset banner.
    console.start_tail("console.*", after="999999")
    wait_until(lambda: console.js("!!document.querySelector('#tail-banners .signal-reset')"), 15,
               "the rewind.reset banner for a cursor beyond the head")
    banner = console.js("document.querySelector('#tail-banners .signal-reset').textContent")
    if "999999" not in banner:
        raise TestFailure(f"the reset banner should name the cursor 999999: {banner!r}")
    console.click("tail-stop")

    # A cursor before what retention kept: the rewind.gap banner, then the kept events.
    console.start_tail("console.pruned", after=str(pruned[0]))
    wait_until(lambda: console.js("!!document.querySelector('#tail-banners .signal-gap')"), 15,
               "the rewind.gap banner for a cursor before the retained events")
    banner = console.js("document.querySelector('#tail-banners .signal-gap').textContent")
    if f"continuing with id {pruned[-2]}" not in banner:
        raise TestFailure(f"the gap banner should say the tail continues with id {pruned[-2]}: {banner!r}")
    console.wait_tail_rows(pruned[-2:])
    console.click("tail-stop")

    # A type filter, replaying from an id: only that type's events.
    console.start_tail("console.*", after=str(pruned[-1]), types="order.created")
    rows = console.wait_tail_rows([i for i in orders if i != paid])
    if {row["type"] for row in rows} != {"order.created"}:
        raise TestFailure(f"a tail filtered to order.created shows types {sorted({row['type'] for row in rows})}")
    console.click("tail-stop")

    # History: newest page, then older, open one event and copy its id.
    orders_ids = sorted(orders)
    console.view("history")
    console.fill("history-stream", "console.orders")
    console.fill("history-size", "20")
    console.js("document.getElementById('history-form').requestSubmit()")

    def history_ids():
        return console.js("[...document.querySelectorAll('#history-rows tr')].map((tr) => Number(tr.dataset.id))")
    newest = wait_until(lambda: history_ids() or None, 10, "the history's newest page")
    if newest != list(reversed(orders_ids))[:20]:
        raise TestFailure(f"history's newest page should be {list(reversed(orders_ids))[:20]}, shows {newest}")
    console.click("history-older")
    older = wait_until(lambda: (ids := history_ids()) != newest and ids or None, 10, "the history's older page")
    if older != list(reversed(orders_ids))[20:40]:
        raise TestFailure(f"history's older page should be {list(reversed(orders_ids))[20:40]}, shows {older}")
    console.click("history-newer")
    wait_until(lambda: history_ids() == newest, 10, "the history's newer page again")
    console.js("document.querySelector('#history-rows tr button').click()")
    console.js("window.scrollTo(0, 0)")
    wait_until(lambda: console.visible("history-detail") and console.text("detail-title") == f"Event {newest[0]}",
               10, f"event {newest[0]} to open")
    console.click("detail-copy")
    copied = wait_until(lambda: console.text("detail-copied"), 5, "the copy id answer")
    if str(newest[0]) not in copied:
        raise TestFailure(f"copying the id should name {newest[0]}: {copied!r}")
    console.screenshot("history")

    console.view("streams")
    time.sleep(2.5)  # a second sample, so events per minute shows
    console.screenshot("streams")
    rewind.stop()
    return len(expected)


def token_command_available(binary):
    """Whether `rewind token` mints a JWT (three dot-separated parts); `--help` alone would not tell, since an
    unknown subcommand followed by --help still prints the main help."""
    try:
        result = subprocess.run([binary, "token", "--secret", "probe-" + "x" * 40, "--subscribe", "*", "--ttl", "1h"],
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    lines = result.stdout.strip().splitlines()
    return result.returncode == 0 and bool(lines) and lines[-1].strip().count(".") == 2


def mint(binary, secret, *scopes):
    result = subprocess.run([binary, "token", "--secret", secret, *scopes, "--ttl", "1h"], capture_output=True,
                            text=True, timeout=30)
    if result.returncode != 0 or not result.stdout.strip():
        raise TestFailure(f"rewind token {' '.join(scopes)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout.strip().splitlines()[-1].strip()


def run_with_auth(args, binary, workdir, stack, console_factory):
    authdir = os.path.join(workdir, "auth")
    os.mkdir(authdir)
    secret = "console-test-secret-" + os.urandom(8).hex()
    port = free_port()
    rewind = Rewind(binary, authdir, port, ["--jwt-secret", secret])
    stack.callback(rewind.stop)
    rewind.start()
    writer = mint(binary, secret, "--subscribe", "*", "--publish", "*")
    reader = mint(binary, secret, "--subscribe", "console.*")
    publish_api(port, "console.orders", {"order": 1}, "order.created", token=writer)
    status, _ = api(port, "GET", "/")
    if status != 200:
        raise TestFailure(f"with auth on, GET / (the console) should need no token; it answered {status}")

    devtools = start_chromium(os.path.join(authdir), stack)
    console = console_factory(devtools, port)
    console.viewport(WIDE)
    console.open(fresh=True)
    try:
        wait_until(lambda: console.visible("auth-banner") and "401" in console.text("auth-banner"), 10,
                   "the 401 message without a token")
    except TestFailure as failure:
        raise TestFailure(f"{failure}; banner: {console.text('auth-banner')!r}, streams status: "
                          f"{console.text('streams-status')!r}") from None
    console.screenshot("auth-401")

    console.fill("token", reader)
    console.js("document.getElementById('token-form').requestSubmit()")
    wait_until(lambda: not console.visible("auth-banner"), 10, "the 401 message to go once a token is given")
    check_streams_view(console, {"console.orders": 1})
    console.start_tail("console.*")
    console.wait_tail_state("live", 15, "the tail to be live with a subscribe-only token (sent as a cookie)")
    message, assigned = console.publish_form("console.orders", '{"order": 2}', "order.created")
    if assigned is not None or "403" not in message:
        raise TestFailure(f"publishing with a subscribe-only token should show the 403 message; the form says "
                          f"{message!r}")
    console.screenshot("auth-403")
    published = publish_api(port, "console.orders", {"order": 3}, "order.created", token=writer)
    console.view("tail")
    console.wait_tail_rows([published])
    rewind.stop()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="the rewind executable to test (copied first)")
    parser.add_argument("--output", default="ci-output/console", help="folder for the screenshots")
    args = parser.parse_args()
    os.makedirs(args.output, exist_ok=True)
    with scratch_directory("console") as workdir:
        binary = os.path.join(workdir, "rewind")
        try:
            shutil.copy2(args.binary, binary)
        except OSError as error:
            raise TestFailure(f"cannot copy the binary {args.binary}: {error}") from None
        screenshots = []

        def console_factory(devtools, port):
            console = Console(devtools, port, args.output)
            screenshots.append(console.screenshots)
            return console

        with contextlib.ExitStack() as stack:
            run_overview(args, binary, workdir, stack, console_factory)
        with contextlib.ExitStack() as stack:
            count = run_without_auth(args, binary, workdir, stack, console_factory)
        auth = "auth: skipped, this rewind has no `token` command"
        if token_command_available(binary):
            with contextlib.ExitStack() as stack:
                run_with_auth(args, binary, workdir, stack, console_factory)
            auth = "auth: 401 shown without a token, 403 shown publishing with a subscribe-only token"
        shots = [path for group in screenshots for path in group]
        print(f"console test passed: {count} events in the tail exactly once in order across a server restart; "
              f"{auth}; {len(shots)} screenshots in {args.output}")


if __name__ == "__main__":
    main()
