#!/usr/bin/env python3
"""End-to-end test of how `rewind serve` is configured: flags, REWIND_* environment variables, a YAML file given
with --config (precedence flag > environment > file > default), --print-config, --trusted-proxy and --log-format.

Observed from outside, on three servers that share one file (retry 250, heartbeat 1 s, max-event-bytes 100):
- file only: a stream's `retry: 250`, a heartbeat comment within 2.5 s, a 150-byte event refused with 413;
- with REWIND_RETRY=500, REWIND_HEARTBEAT=30, REWIND_MAX_EVENT_BYTES=200 (and an unknown REWIND_ variable, which
  is ignored): `retry: 500`, no heartbeat within 3 s, 150 bytes accepted and 250 refused;
- with --retry 750 --heartbeat 1 --max-event-bytes 300 as well: `retry: 750`, a heartbeat, 250 bytes accepted.
Then: an unknown key and a wrongly typed value in the file exit 2 with one line naming the key; a JWT secret from
the environment appears neither in --print-config nor in the log, nor does a token sent with a request;
X-Forwarded-For and Forwarded name the logged client only from a --trusted-proxy peer; --log-format json writes
one JSON object per line with the same dotted keys. Standard library only; only talks to 127.0.0.1; stops only the
processes it started.
"""
import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rewindtest import Rewind, TestFailure, free_port, http_request_or_fail, scratch_directory  # noqa: E402

SECRET = "config-test-secret-0123456789abcdef0123456789"
TOKEN = "config-test-token-fedcba9876543210"


def start_server(binary, workdir, name, args=(), env=None):
    """`rewind serve` on `{name}.sqlite`, configured only by `args`, `env` and what they name (no REWIND_ variable
    of this process, no --host or --retry of the test's own)."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REWIND_")}
    environment.update(env or {})
    server = Rewind(binary, workdir, free_port(), args, db=os.path.join(workdir, f"{name}.sqlite"),
                    log_name=f"{name}.log", env=environment, retry=None, host=None)
    server.start()
    return server


def request(server, method, path, body=None, headers=None):
    return http_request_or_fail(server.port, method, path, body=body, headers=headers)[:2]


def publish_size(server, size):
    return request(server, "POST", "/v1/streams/sizes/events", body=b"x" * size,
                   headers={"Content-Type": "text/plain"})[0]


def stream_start(server, seconds):
    """(retry value, seconds until the first heartbeat comment or None) of a live SSE stream. Read raw: the retry
    line and the heartbeat comments are what is checked, and an SSE reader skips both."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=seconds + 2) as s:
        s.sendall(b"GET /v1/streams/quiet/events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        started = time.monotonic()
        data = b""
        heartbeat = None
        s.settimeout(0.2)
        while time.monotonic() - started < seconds:
            try:
                chunk = s.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                break
            data += chunk
            body = data.split(b"\r\n\r\n", 1)[-1]
            # The opening frame is "retry: N", ": rewind" and a blank line; a later bare ":" line is a heartbeat.
            if b"\n:\n" in body.split(b": rewind\n", 1)[-1] or b"\n:\r\n" in body:
                heartbeat = time.monotonic() - started
                break
    text = data.decode(errors="replace")
    retry = next((int(line[7:]) for line in text.splitlines() if line.startswith("retry: ")), None)
    return retry, heartbeat


def check_precedence(binary, workdir):
    config = os.path.join(workdir, "rewind.yaml")
    with open(config, "w") as file:
        file.write("retry: 250\nheartbeat: 1\nmax-event-bytes: 100\ncors-origin: [https://a.example]\n")
    environment = {"REWIND_RETRY": "500", "REWIND_HEARTBEAT": "30", "REWIND_MAX_EVENT_BYTES": "200",
                   "REWIND_NOT_AN_OPTION": "ignored"}
    flags = ["--retry", "750", "--heartbeat", "1", "--max-event-bytes", "300"]
    cases = [
        ("file", [], {}, 250, True, [(50, 201), (150, 413)]),
        ("environment", [], environment, 500, False, [(150, 201), (250, 413)]),
        ("flag", flags, environment, 750, True, [(250, 201), (350, 413)]),
    ]
    for name, args, env, retry, heartbeat, sizes in cases:
        server = start_server(binary, workdir, name, ["--config", config, *args], env)
        try:
            seen_retry, seen_heartbeat = stream_start(server, 2.5 if heartbeat else 3.0)
            if seen_retry != retry:
                raise TestFailure(f"{name}: the stream says retry: {seen_retry}, expected {retry}")
            if heartbeat and seen_heartbeat is None:
                raise TestFailure(f"{name}: no heartbeat within 2.5 s (expected one every 1 s)")
            if not heartbeat and seen_heartbeat is not None:
                raise TestFailure(f"{name}: a heartbeat after {seen_heartbeat:.1f} s (the environment says 30 s)")
            for size, status in sizes:
                got = publish_size(server, size)
                if got != status:
                    raise TestFailure(f"{name}: a {size}-byte event got {got}, expected {status}")
        finally:
            server.stop()
        print(f"  {name} wins: retry: {retry}, heartbeat {'every 1 s' if heartbeat else 'not within 3 s'}, "
              f"max-event-bytes as expected ({', '.join(f'{s} B → {c}' for s, c in sizes)})")


def check_bad_files(binary, workdir):
    for content, key in (("retri: 250\n", "retri"), ("heartbeat: soon\n", "heartbeat"),
                         ("cors-origin: https://a.example\n", "cors-origin"), ("tls:\n  cert: x\n", "tls.cert")):
        path = os.path.join(workdir, "bad.yaml")
        with open(path, "w") as file:
            file.write(content)
        result = subprocess.run([binary, "serve", "--config", path, "--port", str(free_port())],
                                capture_output=True, timeout=30)
        lines = result.stderr.decode().strip().splitlines()
        if result.returncode != 2 or len(lines) != 1 or key not in lines[0] or path not in lines[0]:
            raise TestFailure(f"file {content!r}: exit {result.returncode}, stderr {lines}; "
                              f"expected exit 2 and one line naming {path} and '{key}'")
    print("  unknown keys and wrong types in the file: exit 2, one line naming the key")


def check_secrets(binary, workdir):
    env = dict({k: v for k, v in os.environ.items() if not k.startswith("REWIND_")}, REWIND_JWT_SECRET=SECRET,
               REWIND_DB="postgres://rewind:db-password-42@127.0.0.1/rewind")
    printed = subprocess.run([binary, "serve", "--print-config"], capture_output=True, timeout=30, env=env)
    out = printed.stdout.decode()
    if printed.returncode != 0 or "jwt-secret" not in out or "REWIND_JWT_SECRET" not in out:
        raise TestFailure(f"--print-config failed or does not show where jwt-secret came from: {out}")
    if SECRET in out or "db-password-42" in out:
        raise TestFailure(f"--print-config shows a secret:\n{out}")
    server = start_server(binary, workdir, "secret", ["--log-level", "trace"], {"REWIND_JWT_SECRET": SECRET})
    try:
        status, _ = request(server, "GET", f"/v1/streams/a/events?access_token={TOKEN}",
                            headers={"Accept": "application/json"})
        status2, _ = request(server, "GET", "/v1/streams/a/events", headers={"Accept": "application/json",
                                                                             "Authorization": f"Bearer {TOKEN}"})
        if status != 401 or status2 != 401:
            raise TestFailure(f"the environment's secret did not turn auth on: {status}, {status2}")
    finally:
        server.stop()
    log = server.log_text()
    if SECRET in log or TOKEN in log:
        raise TestFailure(f"the log shows the secret or a token:\n{log}")
    print("  a secret from the environment: redacted in --print-config, absent from the log, and so are tokens")


def check_proxies_and_json(binary, workdir):
    forwarded = [({"X-Forwarded-For": "203.0.113.7"}, "203.0.113.7"),
                 ({"X-Forwarded-For": "198.51.100.9, 203.0.113.8, 127.0.0.1"}, "203.0.113.8"),
                 ({"Forwarded": 'for="[2001:db8::1]:4711";proto=https'}, "2001:db8::1")]
    trusted = start_server(binary, workdir, "trusted", ["--trusted-proxy", "127.0.0.0/8", "--log-format", "json"])
    untrusted = start_server(binary, workdir, "untrusted", ["--trusted-proxy", "10.0.0.0/8"])
    try:
        for headers, _ in forwarded:
            request(trusted, "GET", "/v1/streams", headers=headers)
            request(untrusted, "GET", "/v1/streams", headers=headers)
    finally:
        trusted.stop()
        untrusted.stop()
    records = []
    for line in trusted.log_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            raise TestFailure(f"--log-format json wrote a line that is not JSON: {line!r}")
    requests = [r for r in records if r.get("message") == "request" and r.get("http.path") == "/v1/streams"]
    addresses = [r.get("client.address") for r in requests]
    if addresses != [client for _, client in forwarded]:
        raise TestFailure(f"behind a trusted proxy the logged clients are {addresses}, expected "
                          f"{[client for _, client in forwarded]}")
    if not all("http.status" in r and "http.duration_ms" in r and "level" in r for r in requests):
        raise TestFailure(f"JSON request lines lack the usual keys: {requests}")
    text = untrusted.log_text()
    lines = [line for line in text.splitlines() if "http.path=/v1/streams " in line]
    if len(lines) != len(forwarded) or not all("client.address=127.0.0.1" in line for line in lines):
        raise TestFailure(f"from a peer outside --trusted-proxy the forwarding headers were believed:\n{text}")
    if any(client in text for _, client in forwarded):
        raise TestFailure("a forwarded address shows in the log of a server that does not trust the peer")
    print("  forwarding headers believed only from a trusted proxy; JSON log lines with the same keys")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="the rewind executable to test (copied first)")
    args = parser.parse_args()
    with scratch_directory("config") as workdir:
        binary = os.path.join(workdir, "rewind")
        shutil.copy2(args.binary, binary)
        check_precedence(binary, workdir)
        check_bad_files(binary, workdir)
        check_secrets(binary, workdir)
        check_proxies_and_json(binary, workdir)
    print("config test passed")


if __name__ == "__main__":
    main()
