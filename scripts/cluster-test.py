#!/usr/bin/env python3
"""Several Rewind nodes on one PostgreSQL log, as real processes on a real PostgreSQL (the throwaway cluster of
scripts/postgres-cluster.sh, a fresh database per case). Each case prints what it checked, with counts:

  fanout      three nodes, six publishers round-robin over them (single events and NDJSON batches) and a noise
              stream; one subscriber per node from the start of the log into the live phase: each got exactly the
              sorted acknowledged ids, the same on every node.
  order       commit order under contention: writers on every node, readers paging the JSON read by cursor on
              random nodes while they write: each reader saw exactly the whole log, in order (a lower id that
              commits after a higher one was read is missed by a reader already past it).
  kill        kill -9 of one node while publishing through all: every 201 is in the log with its data, batches
              whole; that node's subscribers resume on another node with Last-Event-ID and end exact.
  pgrestart   PostgreSQL stopped fast, then immediately (a crash), and started again while the nodes publish:
              only 201 or 503 with Retry-After, never 500, never a hung request; every node publishes again within
              seconds without a restart; subscribers end exact.
  partition   one node cut off from PostgreSQL (a TCP proxy of this script's own between them is stopped): that
              node answers 503 and its /readyz 503, the others keep answering 201; it recovers by itself when the
              proxy is back; subscribers on every node end exact.
  shared      idempotency keys sent concurrently to two nodes append once and both answers name the same ids;
              a stream deleted on one node closes its subscribers on every node and reconnects get 204 anywhere;
              retention by the nodes' maintenance (by count and by a 2 s max-age) makes every node answer a cursor
              behind the horizon with `rewind.gap` and then exactly the kept events.
  nginx       deploy/nginx-cluster.conf in front of two nodes: an EventSource-like client behind nginx keeps its
              stream through the kill -9 of the node it was on and ends exact; POSTs through nginx are never
              retried on another node (no event twice).

After each case `rewind verify --db <url>` runs when this binary's verify takes a PostgreSQL URL, and when
`rewind serve` has `--node-name` every node gets one and fanout checks that its /metrics carry it (otherwise a note
says what was skipped). The nodes' URLs set `connect_timeout=4`, so a request waiting for an unreachable PostgreSQL
answers 503 within seconds; a request without an answer after 15 s counts as hung.

Usage: scripts/cluster-test.py --binary .build/debug/rewind [--postgres-dir .build/postgres-test] [--case NAME ...]
The PostgreSQL cluster in --postgres-dir is started when it is not running (and left running); the pgrestart case
stops and starts it. Only talks to 127.0.0.1; every request has a timeout and every loop a bound; stops only the
processes it started, by PID.
"""
import argparse
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
from rewindtest import (  # noqa: E402
    PostgresCluster, ResumingSubscriber, Rewind, SSEReader, TestFailure, free_port, http_attempt, http_get,
    metric_sum, attempt_batch, attempt_one, read_log, start_nginx, stop_process, wait_until,
)

# Every node sends a heartbeat each second, so a subscriber's read timeout (5 s) only expires on a node that hangs.
NODE_ARGS = ["--heartbeat", "1"]
# The nodes' PostgreSQL URLs set `connect_timeout` (default 10 s), which bounds every store operation: while
# PostgreSQL is unreachable a publish waits that long for a connection before it answers 503.
CONNECT_TIMEOUT = 4
# A publish gets an answer within this or counts as hung (a publish can wait for a commit ahead of it, then its own).
PUBLISH_TIMEOUT = 15


def say(case, text):
    print(f"cluster-test: {case}: {text}", flush=True)


def check(condition, message):
    if not condition:
        raise TestFailure(message)


def differences(got, expected):
    """A short description of how the id list `got` differs from `expected` (empty when equal)."""
    if got == expected:
        return ""
    got_set, expected_set = set(got), set(expected)
    missing = sorted(expected_set - got_set)
    extra = sorted(got_set - expected_set)
    duplicates = len(got) - len(got_set)
    disorder = sum(1 for a, b in zip(got, got[1:]) if b <= a)
    return (f"got {len(got)} ids, expected {len(expected)}: {len(missing)} missing {missing[:8]}, {len(extra)} "
            f"unexpected {extra[:8]}, {duplicates} duplicates, {disorder} out of order")


class Nodes:
    """N Rewind processes on one PostgreSQL database (`urls` gives each its own URL, e.g. through a proxy)."""

    def __init__(self, binary, workdir, urls, extra_args=(), node_names=False):
        self.names = [f"cluster-test-node-{i}" for i in range(len(urls))] if node_names else []
        self.nodes = [Rewind(binary, workdir, free_port(),
                             [*NODE_ARGS, *extra_args, *(["--node-name", self.names[i]] if node_names else [])],
                             db=url, log_name=f"node{i}.log")
                      for i, url in enumerate(urls)]

    @property
    def ports(self):
        return [node.port for node in self.nodes]

    def start(self):
        failures = []

        def start(node):
            try:
                node.start()
            except TestFailure as failure:
                failures.append(failure)

        threads = [threading.Thread(target=start, args=(node,)) for node in self.nodes]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failures:
            raise failures[0]

    def stop(self):
        for node in self.nodes:
            node.stop()

    def log_tails(self):
        return "\n".join(f"--- node {i} (port {node.port}):\n{node.log_tail()}" for i, node in enumerate(self.nodes))


class Publisher(threading.Thread):
    """Publishes until told to stop (or `count` requests, or the deadline), round-robin over `ports` starting at
    `offset`: single text/plain events, and every `batch_every`-th request an NDJSON batch of 2-5 events. Each
    event's data is unique (`<name>-<n>[.<k>]`), so the log can be matched against what was answered. Records
    every request's outcome."""

    def __init__(self, name, ports, stream, deadline, offset=0, batch_every=0, pause=0.0, count=None,
                 timeout=PUBLISH_TIMEOUT):
        super().__init__(daemon=True, name=name)
        self.ports, self.stream, self.deadline, self.offset = list(ports), stream, deadline, offset
        self.batch_every, self.pause, self.count, self.timeout = batch_every, pause, count, timeout
        self.outcomes = []
        self.stopping = threading.Event()

    def run(self):
        n = 0
        while (not self.stopping.is_set() and time.monotonic() < self.deadline
               and (self.count is None or n < self.count)):
            port = self.ports[(self.offset + n) % len(self.ports)]
            started = time.monotonic()
            if self.batch_every and n % self.batch_every == self.batch_every - 1:
                datas = [f"{self.name}-{n}.{k}" for k in range(random.randint(2, 5))]
                status, body, headers = attempt_batch(port, self.stream, datas, timeout=self.timeout)
            else:
                datas = [f"{self.name}-{n}"]
                status, body, headers = attempt_one(port, self.stream, datas[0], timeout=self.timeout)
            self.outcomes.append({"port": port, "stream": self.stream, "datas": datas, "status": status, "body": body,
                                  "headers": headers, "started": started, "elapsed": time.monotonic() - started})
            n += 1
            if self.pause:
                time.sleep(self.pause)

    def stop(self):
        self.stopping.set()
        self.join(timeout=PUBLISH_TIMEOUT + 5)


def start_all(threads):
    """Starts every thread (subscribers, publishers) and returns them."""
    for thread in threads:
        thread.start()
    return threads


def stop_publishers(publishers):
    """Stops every publisher and returns all their outcomes."""
    for publisher in publishers:
        publisher.stop()
    return [outcome for publisher in publishers for outcome in publisher.outcomes]


def run_publishers(publishers, seconds):
    start_all(publishers)
    time.sleep(seconds)
    return stop_publishers(publishers)


def load_on_three_nodes(env, stream, seconds, subscribers_per_node, **publishing):
    """Three nodes on a new database, each with `subscribers_per_node` subscribers of `stream` that resume on the
    next node when theirs fails, and six publishers to `stream` spread over all three (`publishing`: the
    Publisher's options), all started and running for at most `seconds`. Returns the database's URL, the nodes,
    the subscribers (node by node) and the publishers."""
    url = env.pg.database()
    nodes = env.nodes(url, 3)
    ports = nodes.ports
    deadline = time.monotonic() + seconds
    subscribers = start_all([ResumingSubscriber(f"node{i}-{k}" if subscribers_per_node > 1 else f"node{i}",
                                                ports[i:] + ports[:i], f"/v1/streams/{stream}/events?after=0",
                                                deadline)
                             for i in range(3) for k in range(subscribers_per_node)])
    publishers = start_all([Publisher(f"p{i}", ports, stream, deadline, offset=i, **publishing) for i in range(6)])
    return url, nodes, subscribers, publishers


def acked_ids(outcomes, stream=None):
    return sorted(i for o in outcomes if o["status"] == 201 and (stream is None or o["stream"] == stream)
                  for i in o["body"]["ids"])


def check_publishes(case, outcomes, log, allowed=(201,), no_answer_ports=()):
    """Matches every publish against the log (all streams): each 201's ids hold its data, in order, on its stream;
    every request's events are in the log all or none (batches whole); no data twice. Statuses outside `allowed`
    fail; a 503 must carry Retry-After; a request without an answer fails unless it went to one of
    `no_answer_ports` (a node that was killed). Returns the count per outcome."""
    by_data = {}
    for event in log:
        check(event["data"] not in by_data, f"{case}: event data {event['data']!r} is in the log twice "
                                            f"(ids {by_data.get(event['data'], {}).get('id')} and {event['id']})")
        by_data[event["data"]] = event
    counts = Counter()
    for o in outcomes:
        status = o["status"]
        counts[status if status is not None else f"no answer ({o['body']})"] += 1
        if status is None:
            check(o["port"] in no_answer_ports,
                  f"{case}: a publish to port {o['port']} got no answer ({o['body']}) after {o['elapsed']:.1f} s")
        else:
            check(status in allowed, f"{case}: a publish to port {o['port']} answered {status}: {o['body']}")
            check(o["elapsed"] < PUBLISH_TIMEOUT, f"{case}: a publish took {o['elapsed']:.1f} s")
        if status == 503:
            check("retry-after" in o["headers"], f"{case}: a 503 came without Retry-After: {o['body']}")
        present = [d for d in o["datas"] if d in by_data]
        check(len(present) in (0, len(o["datas"])),
              f"{case}: a request of {len(o['datas'])} events is in the log with only {len(present)} of them")
        if status == 201:
            ids = o["body"]["ids"]
            check(len(present) == len(o["datas"]), f"{case}: acknowledged ids {ids} ({o['datas'][0]}…) are not in "
                                                   f"the log")
            logged = [by_data[d] for d in o["datas"]]
            check([e["id"] for e in logged] == ids and all(e["stream"] == o["stream"] for e in logged),
                  f"{case}: acknowledged ids {ids} hold {[(e['id'], e['stream']) for e in logged]} in the log")
    return counts


def format_counts(counts):
    return ", ".join(f"{count}× {status}" for status, count in sorted(counts.items(), key=lambda kv: str(kv[0])))


def finish_subscribers(case, subscribers, expected, seconds=30):
    """Waits for each subscriber to reach the last expected id, closes it, and compares its ids with `expected`."""
    until = expected[-1] if expected else None
    end = time.monotonic() + seconds
    for subscriber in subscribers:
        subscriber.finish(until, max(1.0, end - time.monotonic()))
    for subscriber in subscribers:
        diff = differences(subscriber.ids, expected)
        check(not diff, f"{case}: subscriber {subscriber.name} (served by ports {sorted(set(subscriber.served_by))}): "
                        f"{diff}; refused: {subscriber.refusals[:5]}")


def wait_ready(port, status, seconds, what):
    def answered():
        answer = http_get(port, "/readyz", timeout=5)
        return answer is not None and answer[0] == status
    return wait_until(answered, seconds, what)


def in_parallel(function, items):
    """Calls function(item) for every item at once, each in a thread; raises the first failure."""
    failures = []

    def call(item):
        try:
            function(item)
        except Exception as failure:  # noqa: BLE001 - handed to the caller
            failures.append(failure)

    threads = start_all([threading.Thread(target=call, args=(item,), daemon=True) for item in items])
    for thread in threads:
        thread.join(timeout=120)
    if failures:
        raise failures[0]


class TcpProxy:
    """A TCP relay on 127.0.0.1 in front of PostgreSQL for one node. `cut()` closes every relayed connection and the
    listening socket (new connections are refused); `restore()` listens again on the same port."""

    def __init__(self, target_port):
        self.target_port = target_port
        self.port = free_port()
        self.connections = set()
        self.lock = threading.Lock()
        self.listener = None
        self.accepted = 0
        self.restore()

    def restore(self):
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.2)
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener):
        while self.listener is listener:
            try:
                client, _ = listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            with self.lock:
                if self.listener is not listener:
                    client.close()
                    upstream.close()
                    return
                self.connections |= {client, upstream}
                self.accepted += 1
            for source, target in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, target), daemon=True).start()

    def _pump(self, source, target):
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                target.sendall(data)
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        with self.lock:
            listener, self.listener = self.listener, None
            connections, self.connections = self.connections, set()
        listener.close()
        for sock in connections:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        return len(connections)


# --- the cases ---------------------------------------------------------------------------------------------------

def case_fanout(env):
    case = "fanout"
    url = env.pg.database()
    nodes = env.nodes(url, 3)
    ports = nodes.ports
    # Some history before the subscribers come, so each one replays from the log and then goes live.
    before = Publisher("early", ports, "orders", time.monotonic() + 20, count=30, batch_every=3)
    before.run()
    deadline = time.monotonic() + 90
    subscribers = start_all([ResumingSubscriber(f"node{i}", [port], "/v1/streams/orders/events?after=0", deadline)
                             for i, port in enumerate(ports)])
    publishers = [Publisher(f"p{i}", ports, "orders", deadline, offset=i, batch_every=2 if i % 2 else 0, pause=0.005)
                  for i in range(6)]
    publishers.append(Publisher("noise", ports, "noise", deadline, batch_every=4, pause=0.005))
    outcomes = before.outcomes + run_publishers(publishers, 6)
    log = read_log(ports[0])
    counts = check_publishes(case, outcomes, log)
    expected = acked_ids(outcomes, "orders")
    logged = [e["id"] for e in log if e["stream"] == "orders"]
    check(logged == expected, f"{case}: the log's ids of `orders` against the acknowledged ones: "
                              f"{differences(logged, expected)}")
    finish_subscribers(case, subscribers, expected)
    batches = sum(1 for o in outcomes if len(o["datas"]) > 1)
    if nodes.names:
        for port, name in zip(ports, nodes.names):
            answer = http_get(port, "/metrics")
            check(answer is not None and answer[0] == 200 and name in answer[1].decode(),
                  f"{case}: /metrics on port {port} does not carry the node's name {name}")
        say(case, f"each node's /metrics carries its --node-name")
    say(case, f"{len(outcomes)} publishes ({batches} batches) over 3 nodes: {format_counts(counts)}; "
              f"{len(expected)} acknowledged ids on `orders` and {len(acked_ids(outcomes, 'noise'))} on `noise`; "
              f"each of the 3 subscribers (one per node, from the start into the live phase) got exactly the "
              f"{len(expected)} sorted acknowledged ids")
    return url


def case_order(env):
    case = "order"
    url = env.pg.database()
    nodes = env.nodes(url, 3)
    ports = nodes.ports
    deadline = time.monotonic() + 60
    writers = [Publisher(f"w{i}", ports, f"order.{i % 4}", deadline, offset=i, batch_every=3 if i % 3 == 0 else 0)
               for i in range(12)]
    writing = threading.Event()
    writing.set()
    readers = []

    def reader(seen, pages):
        cursor = 0
        final_head = None
        while time.monotonic() < deadline:
            port = random.choice(ports)
            status, body, _ = http_attempt(port, "GET", f"/v1/events?stream=*&after={cursor}&limit=20",
                                           headers={"Accept": "application/json"}, timeout=10)
            if status != 200:
                seen.append(("error", port, status or body))
                return
            page = json.loads(body)
            pages.append(len(page["events"]))
            for event in page["events"]:
                seen.append(event["id"])
            cursor = page["next_after"]
            if not writing.is_set():
                final_head = final_head or page["head"]
                if cursor >= final_head:
                    return
            if not page["events"]:
                time.sleep(0.01)

    for i in range(4):
        seen, pages = [], []
        thread = threading.Thread(target=reader, args=(seen, pages), daemon=True)
        readers.append((thread, seen, pages))
        thread.start()
    outcomes = run_publishers(writers, 8)
    # The head the readers finish at is read after every writer stopped.
    time.sleep(0.2)
    writing.clear()
    for thread, _, _ in readers:
        thread.join(timeout=60)
    log = read_log(ports[0])
    counts = check_publishes(case, outcomes, log)
    whole = [e["id"] for e in log]
    check(whole == acked_ids(outcomes), f"{case}: the log against the acknowledged ids: "
                                        f"{differences(whole, acked_ids(outcomes))}")
    for n, (thread, seen, pages) in enumerate(readers):
        errors = [s for s in seen if isinstance(s, tuple)]
        if errors:
            raise TestFailure(f"{case}: reader {n} got {errors[0]}")
        check(not thread.is_alive(), f"{case}: reader {n} did not reach the head")
        diff = differences(seen, whole)
        check(not diff, f"{case}: reader {n} paging by cursor on random nodes: {diff}")
    pages = sum(len(p) for _, _, p in readers)
    say(case, f"12 writers on 3 nodes: {format_counts(counts)}, {len(whole)} events; 4 readers paging by cursor "
              f"(limit 20) on random nodes during the writing ({pages} pages in all) each saw exactly the whole log, "
              f"in order")
    return url


def case_kill(env):
    case = "kill"
    url, nodes, subscribers, publishers = load_on_three_nodes(env, "k", 90, 2, batch_every=3, pause=0.005,
                                                              timeout=10)
    ports = nodes.ports
    time.sleep(3)
    victim = nodes.nodes[2]
    victim.kill()
    killed_at = time.monotonic()
    time.sleep(4)
    outcomes = stop_publishers(publishers)
    log = read_log(ports[0])
    counts = check_publishes(case, outcomes, log, no_answer_ports=(victim.port,))
    after_kill = sum(1 for o in outcomes if o["status"] == 201 and o["started"] > killed_at)
    check(after_kill > 0, f"{case}: no publish was acknowledged after the kill")
    expected = [e["id"] for e in log if e["stream"] == "k"]
    acked = acked_ids(outcomes, "k")
    finish_subscribers(case, subscribers, expected)
    moved = [s for s in subscribers[4:] if set(s.served_by) - {victim.port}]
    check(len(moved) == 2,
          f"{case}: the killed node's subscribers did not move: {[s.served_by for s in subscribers[4:]]}")
    say(case, f"node on port {victim.port} killed with SIGKILL after 3 s of publishing through all 3: "
              f"{format_counts(counts)}; all {len(acked)} acknowledged ids in the log with their data, batches whole "
              f"({len(expected) - len(acked)} more committed without an answer); {after_kill} acknowledged after "
              f"the kill; the killed node's 2 subscribers resumed elsewhere with Last-Event-ID, and all 6 ended "
              f"with exactly the log's {len(expected)} ids")
    return url


def case_pgrestart(env):
    case = "pgrestart"
    url, nodes, subscribers, publishers = load_on_three_nodes(env, "r", 120, 1, batch_every=4, pause=0.02)
    ports = nodes.ports
    probes = []
    recoveries = {}
    for mode in ("fast", "immediate"):
        time.sleep(2)
        env.pg.stop(mode)
        stopped_at = time.monotonic()
        try:
            def refused_while_down(port):
                wait_ready(port, 503, 15, f"/readyz 503 on port {port} with PostgreSQL stopped ({mode})")
                data = f"down-{mode}-{port}"
                status, body, headers = attempt_one(port, "probe", data, timeout=PUBLISH_TIMEOUT)
                probes.append({"port": port, "stream": "probe", "datas": [data], "status": status, "body": body,
                               "headers": headers, "started": 0, "elapsed": 0})
                check(status == 503 and "retry-after" in headers,
                      f"{case}: a publish on port {port} with PostgreSQL down answered {status} {headers}: {body}")
            in_parallel(refused_while_down, ports)
            time.sleep(max(0.0, 2 - (time.monotonic() - stopped_at)))
        finally:
            env.pg.start()
        started_at = time.monotonic()

        def publishes_again(port):
            n = [0]

            def publishes():
                n[0] += 1
                data = f"up-{mode}-{port}-{n[0]}"
                status, body, headers = attempt_one(port, "probe", data, timeout=PUBLISH_TIMEOUT)
                probes.append({"port": port, "stream": "probe", "datas": [data], "status": status, "body": body,
                               "headers": headers, "started": 0, "elapsed": 0})
                return status == 201
            wait_until(publishes, 20, f"port {port} to publish again after PostgreSQL's {mode} restart", 0.2)
            wait_ready(port, 200, 20, f"/readyz 200 on port {port} after PostgreSQL's {mode} restart")
        in_parallel(publishes_again, ports)
        recoveries[mode] = time.monotonic() - started_at
    time.sleep(2)
    outcomes = stop_publishers(publishers)
    log = read_log(ports[0])
    counts = check_publishes(case, outcomes + probes, log, allowed=(201, 503))
    check(counts[503] > 0, f"{case}: no publish saw the outage (no 503): {format_counts(counts)}")
    expected = [e["id"] for e in log if e["stream"] == "r"]
    finish_subscribers(case, subscribers, expected)
    refusals = Counter(status for s in subscribers for _, status in s.refusals)
    check(500 not in refusals, f"{case}: a subscription answered 500")
    longest = max(o["elapsed"] for o in outcomes)
    say(case, f"PostgreSQL stopped fast and then immediately, 2 s each, under 6 publishers on 3 nodes: "
              f"{format_counts(counts)} (every 503 with Retry-After, longest request {longest:.1f} s); /readyz 503 "
              f"on every node while down; every node published again {recoveries['fast']:.1f} s and "
              f"{recoveries['immediate']:.1f} s after the starts, no node restarted; the 3 subscribers "
              f"(reconnects refused meanwhile: {format_counts(refusals) or 'none'}) ended with exactly the log's "
              f"{len(expected)} ids")
    return url


def case_partition(env):
    case = "partition"
    url = env.pg.database()
    parts = urllib.parse.urlsplit(url)
    proxy = TcpProxy(parts.port)
    netloc = f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}"
    proxied = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    nodes = env.nodes([url, url, proxied], None)
    ports = nodes.ports
    cut_port = ports[2]
    deadline = time.monotonic() + 90
    subscribers = start_all([ResumingSubscriber(f"node{i}", [port], "/v1/streams/cut/events?after=0", deadline)
                             for i, port in enumerate(ports)])
    publishers = start_all([Publisher(f"p{i}", [port], "cut", deadline, batch_every=3, pause=0.02)
                            for i, port in enumerate(ports)])
    try:
        time.sleep(2)
        closed = proxy.cut()
        cut_at = time.monotonic()
        wait_ready(cut_port, 503, 15, f"/readyz 503 on the cut-off node")

        def refused():
            status, body, headers = attempt_one(cut_port, "cut", f"probe-{time.monotonic()}", timeout=PUBLISH_TIMEOUT)
            check(status in (201, 503), f"{case}: a publish on the cut-off node answered {status or body}: {body}")
            return status == 503 and "retry-after" in headers
        wait_until(refused, 15, "the cut-off node to answer a publish with 503 and Retry-After")
        noticed = time.monotonic() - cut_at
        for port in ports[:2]:
            check((http_get(port, "/readyz") or (None,))[0] == 200,
                  f"{case}: /readyz on port {port} is not 200 while another node is cut off")
        time.sleep(3)
        for port in ports[:2]:
            check((http_get(port, "/readyz") or (None,))[0] == 200,
                  f"{case}: /readyz on port {port} is not 200 while another node is cut off")
    finally:
        proxy.restore()
    restored_at = time.monotonic()
    wait_ready(cut_port, 200, 30, "/readyz 200 on the cut-off node once the proxy is back")
    wait_until(lambda: any(o["status"] == 201 and o["started"] > restored_at for o in publishers[2].outcomes), 30,
               "the cut-off node to acknowledge a publish again")
    recovered = time.monotonic() - restored_at
    time.sleep(1)
    stop_publishers(publishers)
    # The probes above were refused (503) or acknowledged: read what the log holds for `cut` and compare the
    # publishers' records; a probe's 201 is in the subscribers' expected ids through the log.
    log = read_log(ports[0])
    for i, publisher in enumerate(publishers):
        counts = check_publishes(case, publisher.outcomes, log, allowed=(201,) if i < 2 else (201, 503))
        if i < 2:
            during = sum(1 for o in publisher.outcomes if cut_at < o["started"] < restored_at)
            check(during > 0, f"{case}: node {i} published nothing while the other was cut off")
        else:
            check(counts[503] > 0, f"{case}: the cut-off node never answered 503: {format_counts(counts)}")
            cut_counts = counts
    expected = [e["id"] for e in log if e["stream"] == "cut"]
    finish_subscribers(case, subscribers, expected)
    other = sum(1 for p in publishers[:2] for o in p.outcomes)
    say(case, f"proxy cut ({closed} relayed connections closed, new ones refused): the cut-off node answered 503 "
              f"with Retry-After within {noticed:.1f} s and /readyz 503, its publisher got "
              f"{format_counts(cut_counts)}; "
              f"the 2 other nodes acknowledged all {other} of theirs and stayed ready; the node recovered "
              f"{recovered:.1f} s after the proxy came back, without a restart; the 3 subscribers ended with exactly "
              f"the log's {len(expected)} ids")
    return url


def case_shared(env):
    case = "shared"
    url = env.pg.database()
    nodes = env.nodes(url, 3, ["--stream-retention", "short.*:max-events=3", "--stream-retention", "aged.*:max-age=2s",
                               "--maintenance-interval", "1s"])
    ports = nodes.ports
    # Events that retention by age removes while the rest of the case runs.
    aged = [attempt_one(ports[i % 3], "aged.a", f"aged-{i}")[1]["ids"][0] for i in range(5)]

    # Idempotency: the same key at the same moment on two nodes.
    answers = []
    for k in range(20):
        a, b = ports[k % 3], ports[(k + 1) % 3]
        barrier = threading.Barrier(2)
        pair = [None, None]
        datas = [f"idem-{k}"] if k % 2 else [f"idem-{k}.{n}" for n in range(3)]

        def send(slot, port):
            barrier.wait(timeout=10)
            if len(datas) == 1:
                pair[slot] = attempt_one(port, "idem", datas[0], {"Idempotency-Key": f"key-{k}"})
            else:
                pair[slot] = attempt_batch(port, "idem", datas, {"Idempotency-Key": f"key-{k}"})
        threads = [threading.Thread(target=send, args=(slot, port)) for slot, port in enumerate((a, b))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=20)
        statuses = sorted(answer[0] or 0 for answer in pair)
        check(statuses == [200, 201], f"{case}: key-{k} sent to ports {a} and {b} at once answered {pair[0][:2]} and "
                                      f"{pair[1][:2]}, not 201 and a 200 replay")
        replay = pair[0] if pair[0][0] == 200 else pair[1]
        check(replay[2].get("idempotent-replayed") == "true", f"{case}: key-{k}'s 200 lacks Idempotent-Replayed")
        check(pair[0][1]["ids"] == pair[1][1]["ids"], f"{case}: key-{k}'s answers name ids {pair[0][1]['ids']} and "
                                                      f"{pair[1][1]['ids']}")
        answers.append(pair[0][1]["ids"])
    idem = [e["id"] for e in read_log(ports[1], "stream=idem")]
    check(idem == sorted(i for ids in answers for i in ids), f"{case}: the log of `idem` holds {len(idem)} events, "
                                                             f"the keys' answers name {sum(map(len, answers))}")
    say(case, f"20 idempotency keys (10 single events, 10 batches of 3) each sent to two nodes at once: one 201 and "
              f"one 200 replay naming the same ids each time, {len(idem)} events in the log")

    # Deletion: subscribers on every node are closed; reconnects get 204 anywhere.
    deadline = time.monotonic() + 60
    subscribers = start_all([ResumingSubscriber(f"node{i}", [port], "/v1/streams/doomed/events?after=0", deadline)
                             for i, port in enumerate(ports)])
    ids = [attempt_one(ports[i % 3], "doomed", f"doomed-{i}")[1]["ids"][0] for i in range(5)]
    wait_until(lambda: all(s.ids == ids for s in subscribers), 10, "every node's subscriber to get the 5 events")
    status, body, _ = http_attempt(ports[0], "DELETE", "/v1/streams/doomed")
    check(status == 204, f"{case}: DELETE answered {status}: {body}")
    deleted_at = time.monotonic()
    wait_until(lambda: all(s.ended_with_204 for s in subscribers), 10,
               "every node to close its subscriber of the deleted stream and answer its reconnect with 204")
    closed_in = time.monotonic() - deleted_at
    for subscriber in subscribers:
        subscriber.close()
    for port in ports:
        reader = SSEReader(port, "/v1/streams/doomed/events", last_event_id=str(ids[-1]))
        check(reader.status == 204,
              f"{case}: a reconnect to the deleted stream on port {port} answered {reader.status}")
        reader.close()
        reader = SSEReader(port, "/v1/streams/doomed/events", last_event_id=str(ids[1]))
        check(reader.status == 204,
              f"{case}: a reconnect to the deleted stream on port {port} answered {reader.status}")
        reader.close()
    say(case, f"`doomed` deleted on one node: the subscribers on all 3 nodes were closed and their reconnects "
              f"answered 204 within {closed_in:.1f} s; reconnects with Last-Event-ID on every node answer 204")

    # Retention: one node's maintenance prunes; every node signals rewind.gap to a cursor behind the horizon.
    ids = [attempt_one(ports[i % 3], "short.a", f"short-{i}")[1]["ids"][0] for i in range(10)]
    wait_until(lambda: [e["id"] for e in read_log(ports[1], "stream=short.a")] == ids[7:], 15,
               "retention to keep only the last 3 events of short.a")
    for port in ports:
        reader = SSEReader(port, "/v1/streams/short.a/events?live=false", last_event_id=str(ids[1]))
        check(reader.status == 200, f"{case}: a resume behind the horizon on port {port} answered {reader.status}")
        events = list(reader.events(time.monotonic() + 10))
        reader.close()
        check(events and events[0][1] == "rewind.gap", f"{case}: port {port}: first event {events[:1]}, not rewind.gap")
        gap = json.loads(events[0][2])
        check(gap == {"after": ids[1], "earliest": ids[7]}, f"{case}: port {port}: rewind.gap says {gap}, expected "
                                                            f"after {ids[1]}, earliest {ids[7]}")
        rest = [int(e[0]) for e in events[1:]]
        check(rest == ids[7:], f"{case}: port {port}: after the gap {rest}, expected {ids[7:]}")
    say(case, f"retention (short.*: max 3 events) pruned 7 of 10 events of short.a; a resume from id {ids[1]} on each "
              f"of the 3 nodes got rewind.gap {{after: {ids[1]}, earliest: {ids[7]}}} and then exactly the 3 kept "
              f"events")
    wait_until(lambda: read_log(ports[2], "stream=aged.a") == [], 15,
               "retention to remove aged.a's events (max-age 2s)")
    for port in ports:
        reader = SSEReader(port, "/v1/streams/aged.a/events?live=false", last_event_id=str(aged[1]))
        check(reader.status == 200, f"{case}: a resume behind the age horizon on port {port} answered {reader.status}")
        events = list(reader.events(time.monotonic() + 10))
        reader.close()
        check(events and events[0][1] == "rewind.gap", f"{case}: port {port}: first event {events[:1]}, not rewind.gap")
        gap = json.loads(events[0][2])
        check(gap["after"] == aged[1] and gap["earliest"] > aged[-1],
              f"{case}: port {port}: rewind.gap says {gap} after aged.a's events {aged} were all removed")
        check(len(events) == 1, f"{case}: port {port}: events after the gap of an emptied stream: {events[1:]}")
    say(case, f"retention (aged.*: max-age 2s) removed all 5 events of aged.a; a resume from id {aged[1]} on each of "
              f"the 3 nodes got rewind.gap {{after: {aged[1]}, earliest: {gap['earliest']}}} and nothing else")
    return url


CLUSTER_CONFIG = os.path.join(ROOT, "deploy", "nginx-cluster.conf")


def case_nginx(env):
    case = "nginx"
    if not shutil.which("nginx"):
        raise TestFailure("nginx is missing: install Debian's nginx (scripts/proxy-test.py does when run as root)")
    url = env.pg.database()
    nodes = env.nodes(url, 2)
    ports = nodes.ports
    with open(CLUSTER_CONFIG) as shipped:
        site = shipped.read()
    # The shipped upstream lists three nodes; the test has two, on its own ports, with the same parameters.
    servers = re.findall(r"^(\s*)server 127\.0\.0\.1:\d+( [^;]*)?;\n", site, flags=re.M)
    check(len(servers) >= 2, f"{case}: deploy/nginx-cluster.conf lists {len(servers)} upstream servers")
    indent, parameters = servers[0]
    lines = "".join(f"{indent}server 127.0.0.1:{port}{parameters};\n" for port in ports)
    site = re.sub(r"(^\s*server 127\.0\.0\.1:\d+( [^;]*)?;\n)+", lines, site, count=1, flags=re.M)
    proxy_port = free_port()
    site = site.replace("listen 80;", f"listen 127.0.0.1:{proxy_port};")
    nginx = start_nginx(env.workdir, site)
    try:
        def through_nginx():
            if nginx.poll() is not None:
                raise TestFailure(f"nginx exited with status {nginx.returncode}")
            answer = http_get(proxy_port, "/healthz")
            return answer is not None and answer[0] == 200
        wait_until(through_nginx, 15, "nginx to pass /healthz through")
        deadline = time.monotonic() + 60
        client = ResumingSubscriber("behind-nginx", [proxy_port], "/v1/streams/lb/events?after=0", deadline)
        client.start()
        publisher = Publisher("lb", [proxy_port], "lb", deadline, batch_every=3, pause=0.01)
        publisher.start()
        wait_until(lambda: len(client.ids) >= 20, 15, "the client behind nginx to get 20 events")
        holders = [port for port in ports if (metric_sum(port, "rewind_subscribers") or 0) >= 1]
        check(len(holders) == 1, f"{case}: the client's stream is on {len(holders)} nodes by their metrics")
        victim = nodes.nodes[ports.index(holders[0])]
        victim.kill()
        killed_at = time.monotonic()
        time.sleep(3)
        publisher.stop()
        log = read_log(ports[1 - ports.index(victim.port)])
        # A POST in flight to the killed node answers 502 and is not sent again to the other node.
        counts = check_publishes(case, publisher.outcomes, log, allowed=(201, 502))
        after = sum(1 for o in publisher.outcomes if o["status"] == 201 and o["started"] > killed_at)
        check(after > 0, f"{case}: no publish through nginx was acknowledged after the kill")
        expected = [e["id"] for e in log if e["stream"] == "lb"]
        finish_subscribers(case, [client], expected)
        reconnects = len(client.served_by) - 1
        check(reconnects >= 1, f"{case}: the client behind nginx never reconnected")
        say(case, f"nginx with deploy/nginx-cluster.conf over 2 nodes; the node holding the client's stream killed "
                  f"with SIGKILL: publishes through nginx {format_counts(counts)}, {after} acknowledged after the "
                  f"kill; the client reconnected {reconnects}× with Last-Event-ID through nginx and ended with "
                  f"exactly the log's {len(expected)} ids")
    finally:
        stop_process(nginx, seconds=10)
    return url


CASES = {"fanout": case_fanout, "order": case_order, "kill": case_kill, "pgrestart": case_pgrestart,
         "partition": case_partition, "shared": case_shared, "nginx": case_nginx}


class Environment:
    """What a case gets: the binary, the PostgreSQL cluster, a work directory of its own, and its nodes (stopped
    after the case)."""

    def __init__(self, binary, pg, workdir, node_names):
        self.binary, self.pg, self.workdir, self.node_names = binary, pg, workdir, node_names
        self.started = []

    def nodes(self, url_or_urls, count, extra_args=()):
        urls = url_or_urls if isinstance(url_or_urls, list) else [url_or_urls] * count
        urls = [f"{url}{'&' if '?' in url else '?'}connect_timeout={CONNECT_TIMEOUT}" for url in urls]
        nodes = Nodes(self.binary, self.workdir, urls, extra_args, self.node_names)
        self.started.append(nodes)
        nodes.start()
        return nodes

    def stop(self):
        for nodes in self.started:
            nodes.stop()


def serve_has_node_name(binary):
    help_text = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True, timeout=30).stdout
    return "--node-name" in help_text


def verify_takes_urls(binary):
    help_text = subprocess.run([binary, "verify", "--help"], capture_output=True, text=True, timeout=30).stdout
    return "postgres" in help_text.lower()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=".build/debug/rewind")
    parser.add_argument("--postgres-dir", default=".build/postgres-test",
                        help="the cluster of scripts/postgres-cluster.sh to use (started when not running)")
    parser.add_argument("--case", action="append", choices=sorted(CASES), help="run only these cases (repeatable)")
    args = parser.parse_args()
    binary = os.path.abspath(args.binary)
    began = time.monotonic()
    pg = PostgresCluster(args.postgres_dir)
    verify = verify_takes_urls(binary)
    if not verify:
        print("cluster-test: note: this binary's `rewind verify` reads SQLite files only; the verify after each case "
              "is skipped", flush=True)
    node_names = serve_has_node_name(binary)
    if not node_names:
        print("cluster-test: note: this binary's `rewind serve` has no --node-name; the check that each node's "
              "metrics carry its name is skipped", flush=True)
    failed = []
    for name in args.case or list(CASES):
        with tempfile.TemporaryDirectory(prefix=f"rewind-cluster-{name}-") as workdir:
            os.chmod(workdir, 0o755)
            env = Environment(binary, pg, workdir, node_names)
            case_began = time.monotonic()
            try:
                url = CASES[name](env)
                if verify:
                    result = subprocess.run([binary, "verify", "--db", url], capture_output=True, text=True,
                                            timeout=120)
                    check(result.returncode == 0, f"{name}: rewind verify failed: {result.stdout[-500:]}"
                                                  f"{result.stderr[-500:]}")
                    say(name, "rewind verify --db <the case's database> passed")
                say(name, f"passed in {time.monotonic() - case_began:.1f} s")
            except (TestFailure, OSError) as failure:
                failed.append(name)
                print(f"cluster-test: FAILED: {name}: {failure}", file=sys.stderr, flush=True)
                for nodes in env.started:
                    print(nodes.log_tails(), file=sys.stderr)
                for log in ("nginx-error.log", "nginx.out"):
                    path = os.path.join(workdir, log)
                    if os.path.exists(path):
                        print(f"--- {log}:\n" + open(path, errors="replace").read()[-2000:], file=sys.stderr)
            finally:
                env.stop()
    took = time.monotonic() - began
    if failed:
        print(f"cluster-test: FAILED: {', '.join(failed)} ({took:.0f} s)", file=sys.stderr)
        return 1
    print(f"cluster-test: passed ({len(args.case or CASES)} cases in {took:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
