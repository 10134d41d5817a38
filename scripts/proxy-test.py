#!/usr/bin/env python3
"""Rewind behind the proxies in deploy/: the real nginx and Caddy from Debian, each run with the configuration file
as shipped (only the listening address and the upstream port changed for the test), in front of a running Rewind.

Through each proxy: the stream's first bytes arrive within 1 s of the request; each live event arrives within 1 s of
its publish (also published through the proxy), so nothing buffers; a stream idle for longer than the heartbeat
stays open; a resume with `Last-Event-ID` gets exactly the events after it; the JSON read works.

Usage: scripts/proxy-test.py --binary .build/debug/rewind [--proxy nginx --proxy caddy]
Installs nginx and caddy with apt-get when they are missing and we are root. Only talks to 127.0.0.1; every read has
a timeout and every loop a bound; stops only the processes it started.
"""
import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import rewindtest  # noqa: E402
from rewindtest import (Rewind, SSEReader, TestFailure, free_port, http_request, http_request_or_fail,  # noqa: E402
                        stop_process, wait_until)

STREAM = "proxied"
HEARTBEAT = 2  # seconds; the idle check waits longer than this


def ensure_installed(command, package):
    if shutil.which(command):
        return
    if os.geteuid() != 0:
        raise TestFailure(f"{command} is missing; install Debian's {package}")
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True,
                   env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"), stdout=subprocess.DEVNULL)


def start_nginx(workdir, proxy_port, rewind_port):
    """nginx with deploy/nginx.conf, pointed at this test's Rewind and listening on a loopback port, inside the
    shared minimal main configuration (`rewindtest.start_nginx`)."""
    ensure_installed("nginx", "nginx")
    with open(os.path.join(ROOT, "deploy", "nginx.conf")) as shipped:
        site = shipped.read()
    site = site.replace("server 127.0.0.1:8080;", f"server 127.0.0.1:{rewind_port};")
    site = re.sub(r"listen 80;", f"listen 127.0.0.1:{proxy_port};", site)
    return rewindtest.start_nginx(workdir, site)


def start_caddy(workdir, proxy_port, rewind_port):
    """Caddy with deploy/Caddyfile, its site address made a plain-HTTP loopback one and its admin API off."""
    ensure_installed("caddy", "caddy")
    with open(os.path.join(ROOT, "deploy", "Caddyfile")) as shipped:
        caddyfile = shipped.read()
    caddyfile = caddyfile.replace("rewind.example.com {", f"http://127.0.0.1:{proxy_port} {{")
    caddyfile = caddyfile.replace("127.0.0.1:8080", f"127.0.0.1:{rewind_port}")
    caddyfile = "{\n\tadmin off\n}\n\n" + caddyfile
    config = os.path.join(workdir, "Caddyfile")
    with open(config, "w") as out:
        out.write(caddyfile)
    env = dict(os.environ, HOME=workdir, XDG_DATA_HOME=workdir, XDG_CONFIG_HOME=workdir)
    subprocess.run(["caddy", "validate", "--config", config, "--adapter", "caddyfile"], check=True, env=env,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return subprocess.Popen(["caddy", "run", "--config", config, "--adapter", "caddyfile"], env=env,
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "caddy.out"), "wb"))


PROXIES = {"nginx": start_nginx, "caddy": start_caddy}


def read_events(reader, events, seconds, until):
    """Appends (id, type, data, arrival time) of each event `reader` dispatches to `events` until `until()` holds,
    the stream ends or `seconds` pass."""
    for event in reader.events(time.monotonic() + seconds, stop=until):
        events.append((*event, time.monotonic()))
        if until():
            break
    return events


def publish(port, data):
    status, body, _ = http_request_or_fail(port, "POST", f"/v1/streams/{STREAM}/events",
                                           json.dumps({"data": data}).encode(), {"Content-Type": "application/json"},
                                           timeout=10)
    if status != 201:
        raise TestFailure(f"publish through the proxy answered {status}: {body[:200]}")
    return str(json.loads(body)["first_id"])


def check(name, proxy_port):
    started = time.monotonic()
    sse = SSEReader(proxy_port, f"/v1/streams/{STREAM}/events?from=earliest", timeout=10)
    if sse.status != 200:
        raise TestFailure(f"{name}: SSE answered {sse.status}")
    events = read_events(sse, [], 10, lambda: sse.first_bytes_at is not None)
    if sse.first_bytes_at is None:
        raise TestFailure(f"{name}: the stream sent nothing within 10 s")
    first = sse.first_bytes_at - started
    if first > 1.0:
        raise TestFailure(f"{name}: the stream's first bytes took {first:.2f} s")
    published = []
    for n in range(5):
        sent_at = time.monotonic()
        published.append((publish(proxy_port, f"line one {n}\nline two"), "message", f"line one {n}\nline two"))
        read_events(sse, events, 3, lambda: len(events) >= len(published))
        if len(events) < len(published):
            raise TestFailure(f"{name}: live event {n} did not arrive within 3 s")
        latency = events[-1][3] - sent_at
        if latency > 1.0:
            raise TestFailure(f"{name}: live event {n} took {latency:.2f} s through the proxy")
        time.sleep(0.2)
    # Idle for longer than the heartbeat: the stream must stay open (heartbeats pass through) and then deliver.
    time.sleep(HEARTBEAT * 2 + 1)
    published.append((publish(proxy_port, "after a quiet spell"), "message", "after a quiet spell"))
    read_events(sse, events, 3, lambda: len(events) >= len(published))
    got = [event[:3] for event in events]
    if got != published:
        raise TestFailure(f"{name}: stream got {got}, published {published}")
    sse.close()
    # Resume after the second event, as EventSource does, through the proxy.
    resumed = SSEReader(proxy_port, f"/v1/streams/{STREAM}/events?live=false", published[1][0], timeout=10)
    resumed_events = []
    read_events(resumed, resumed_events, 5, lambda: len(resumed_events) >= 10_000)
    if [event[:3] for event in resumed_events] != published[2:]:
        raise TestFailure(f"{name}: resume got {[e[:3] for e in resumed_events]}, expected {published[2:]}")
    resumed.close()
    status, body, _ = http_request_or_fail(proxy_port, "GET", f"/v1/streams/{STREAM}/events?after=0",
                                           headers={"Accept": "application/json"}, timeout=10)
    ids = [str(event["id"]) for event in json.loads(body)["events"]] if status == 200 else None
    if ids != [event[0] for event in published]:
        raise TestFailure(f"{name}: JSON read answered {status} with ids {ids}")
    print(f"proxy-test: {name}: first bytes in {first * 1000:.0f} ms, {len(published)} live events each within 1 s, "
          f"idle {HEARTBEAT * 2 + 1} s kept open, exact resume, JSON read", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=".build/debug/rewind")
    parser.add_argument("--proxy", action="append", choices=sorted(PROXIES))
    args = parser.parse_args()
    failed = False
    for name in args.proxy or sorted(PROXIES):
        with tempfile.TemporaryDirectory(prefix=f"rewind-{name}-") as workdir:
            os.chmod(workdir, 0o755)
            rewind = Rewind(os.path.abspath(args.binary), workdir, free_port(), ["--heartbeat", str(HEARTBEAT)])
            rewind.start()
            proxy = None
            try:
                proxy_port = free_port()
                proxy = PROXIES[name](workdir, proxy_port, rewind.port)
                def answers():
                    if proxy.poll() is not None:
                        raise TestFailure(f"{name} exited with status {proxy.returncode}")
                    return (http_request(proxy_port, "GET", "/healthz", timeout=10) or (0,))[0] == 200

                wait_until(answers, 15, f"{name} to pass /healthz through")
                check(name, proxy_port)
            except (TestFailure, OSError, ValueError, subprocess.CalledProcessError) as failure:
                failed = True
                print(f"proxy-test: FAILED: {name}: {failure}", file=sys.stderr)
                for log in ("nginx-error.log", "nginx.out", "caddy.out"):
                    path = os.path.join(workdir, log)
                    if os.path.exists(path):
                        print(open(path, errors="replace").read()[-2000:], file=sys.stderr)
                print(rewind.log_tail(), file=sys.stderr)
            finally:
                if proxy is not None:
                    stop_process(proxy, seconds=10)
                rewind.stop()
    if failed:
        return 1
    print("proxy-test: passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
