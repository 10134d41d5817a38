#!/usr/bin/env python3
"""Hostile input: valid publishers and SSE subscribers keep working while invalid traffic floods the server, and the
log is intact afterwards.

Starts `rewind serve` on a free 127.0.0.1 port with a temporary database and a small --max-body-bytes (1 MiB). After
a short baseline with valid publishers alone, for --duration seconds:
- valid publishers (keep-alive HTTP; single events and NDJSON batches) record every acknowledged id;
- SSE subscribers (raw sockets, from=earliest; one of them drops its connection every few seconds and resumes with
  Last-Event-ID) record every id they receive;
- flood threads send invalid traffic: malformed JSON, wrong content types, invalid stream names, bodies over the
  limit (with Content-Length and chunked), garbage Authorization headers, truncated requests, raw garbage bytes;
- a few dozen slowloris connections send part of a request head, then half of them stall and the other half
  trickle a byte every 2 s. When the binary has --idle-timeout, the server gets a short one and every such
  connection must have been closed by the end of the flood; otherwise the count left open is only reported.
Every flood thread is bounded in requests and time and talks to 127.0.0.1 only.

Afterwards it checks: every acknowledged event is in the log exactly once with its stream and data (JSON read
API), `PRAGMA integrity_check` prints ok (sqlite3), every subscriber got every acknowledged id of its streams in
order with no duplicate, valid publishers were not starved (at least --min-rate acknowledged events/s during the
flood), every invalid request got a 4xx (or a closed connection) and none a 5xx. It prints the publishers'
throughput with and without the flood and the statuses of the invalid requests. Exits non-zero with the reasons on
any violation; stops every process it started.

With --auth the server runs with JWT auth on (--jwt-secret-file: a random 48-byte secret, hex, in the work
directory) and every token is minted with the binary's own `rewind token`:
- publisher (publish and subscribe flood.*): the valid publishers, as Authorization: Bearer;
- subscriber (subscribe flood.*): the reconnecting subscriber sends it as the access_token query parameter, the
  others as Authorization: Bearer, so two token sources are used under load;
- admin: the final read-back, and the invalid-stream-name flood (so DELETE reaches the name check as well);
- outsider (publish and subscribe other.* only), a token signed with another secret, and one minted with --ttl 1s
  that is used only once it has expired.
The other flood kinds carry the publisher token, so their requests get past auth and still reach the body, content
type and size checks; their allowed statuses are the same as without --auth (the garbage kind sends no token: its
requests never parse as HTTP). The bad-auth kind instead sends, to publish, read, subscribe and delete requests on
the flood streams: no token, garbage Authorization values, the other-secret, expired and outsider tokens, the
publisher token with its signature altered, its payload swapped for an admin one under the original signature, a
hand-built alg "none" admin token, and a garbage bearer next to a valid rewind_token cookie (the header wins). JWTs
go in the Authorization header, the rewind_token cookie or the access_token query parameter, at random. Each must be
answered 401 (403 for the outsider) with WWW-Authenticate and problem+json, without echoing the token (an
Authorization value with a control character is not valid HTTP and must get the parser's 400 instead); anything else
fails the run, as does any event of theirs in the log. Afterwards the server log must contain none of the
tokens, none of their signatures and neither secret.

Usage: scripts/flood-test.py [BINARY | --binary BINARY] [--duration 20] [--auth]   (default .build/debug/rewind)
"""
import argparse
import base64
import collections
import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rewindtest import Rewind, SSEReader, TestFailure, free_port, http_request_or_fail  # noqa: E402

HOST = "127.0.0.1"
STREAMS = ["flood.a", "flood.b"]
MAX_BODY = 1 << 20


def start_server(binary, workdir, max_body_bytes, extra_args=()):
    server = Rewind(binary, workdir, free_port(), ["--max-body-bytes", str(max_body_bytes), "--max-event-bytes",
                                                   str(64 * 1024), "--heartbeat", "1", *extra_args],
                    retry=None, log_name="server.log")
    try:
        server.start()
    except TestFailure as failure:
        server.stop()
        raise SystemExit(f"flood-test: {failure}; see {server.log_path}")
    return server


# MARK: - Valid traffic


class Publishers:
    def __init__(self, port, count, headers=None):
        self.port = port
        self.count = count
        self.headers = headers or {}
        self.lock = threading.Lock()
        self.acked = []  # (id, stream, data)
        self.errors = []
        self.requests = 0
        self.stop = threading.Event()
        self.threads = []

    def start(self, tag):
        self.stop.clear()
        self.threads = [threading.Thread(target=self.run, args=(tag, i), daemon=True) for i in range(self.count)]
        for thread in self.threads:
            thread.start()

    def finish(self):
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def run(self, tag, index):
        connection = http.client.HTTPConnection(HOST, self.port, timeout=15)
        n = 0
        while not self.stop.is_set():
            n += 1
            stream = STREAMS[(index + n) % len(STREAMS)]
            size = 1 if n % 3 else random.randint(2, 6)
            datas = [f"{tag}-p{index}-{n}-{k}-" + "x" * random.randint(0, 48) for k in range(size)]
            if size == 1:
                body, content_type = json.dumps({"type": "valid", "data": datas[0]}), "application/json"
            else:
                body, content_type = "".join(json.dumps({"data": d}) + "\n" for d in datas), "application/x-ndjson"
            try:
                connection.request("POST", f"/v1/streams/{stream}/events", body=body,
                                   headers={"Content-Type": content_type, **self.headers})
                response = connection.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as error:
                with self.lock:
                    self.errors.append(f"publisher {index}: {type(error).__name__}: {error}")
                connection.close()
                connection = http.client.HTTPConnection(HOST, self.port, timeout=15)
                time.sleep(0.05)
                continue
            with self.lock:
                self.requests += 1
                if response.status != 201:
                    self.errors.append(f"publisher {index}: {response.status} {payload[:200]!r}")
                    continue
                ids = json.loads(payload)["ids"]
                for event_id, data in zip(ids, datas):
                    self.acked.append((event_id, stream, data))
        connection.close()


class Subscriber(threading.Thread):
    def __init__(self, port, name, query, streams, reconnect_every=None, headers=None):
        super().__init__(daemon=True)
        self.port = port
        self.name = name
        self.query = query
        self.headers = headers or {}
        self.streams = streams
        self.reconnect_every = reconnect_every
        self.ids = []
        self.errors = []
        self.connections = 0
        self.target = None  # set once publishing is over: stop after this id
        self.give_up = threading.Event()

    def caught_up(self):
        return self.target is not None and self.ids and self.ids[-1] >= self.target

    def run(self):
        while not self.give_up.is_set():
            if self.caught_up():
                return
            try:
                self.follow()
            except (OSError, ValueError) as error:
                self.errors.append(f"{type(error).__name__}: {error}")
                time.sleep(0.1)

    def follow(self):
        self.connections += 1
        reader = SSEReader(self.port, f"/v1/events?{self.query}&from=earliest", self.ids[-1] if self.ids else None,
                           self.headers, timeout=2)  # heartbeats come every second; a quiet socket is checked again
        opened = time.monotonic()

        def leave():
            # Drop the connection (and resume with Last-Event-ID) every `reconnect_every` seconds while publishing.
            return self.give_up.is_set() or self.caught_up() or bool(
                self.reconnect_every and self.target is None and time.monotonic() - opened > self.reconnect_every)
        try:
            if reader.status != 200:
                raise ValueError(f"status {reader.status}")
            for event_id, _, _ in reader.events(stop=leave):
                if event_id is not None:
                    self.ids.append(int(event_id))
                if leave():
                    return
            if reader.error is not None:
                raise reader.error
            if not leave():
                self.errors.append("server closed the stream")
        finally:
            reader.close()


# MARK: - Invalid traffic


def raw_exchange(port, payload, timeout=5.0, half_close=False):
    """Sends bytes on a new connection; returns the response's status, or 'closed' / 'timeout' / 'refused'."""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            try:
                sock.sendall(payload)
                if half_close:
                    sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass  # the server may refuse (and close) before reading everything
            data = b""
            while b"\r\n" not in data:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except socket.timeout:
        return "timeout"
    except ConnectionRefusedError:
        return "refused"
    except OSError:
        return "closed"
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return int(match.group(1)) if match else "closed"


def full_exchange(port, payload, timeout=5.0, limit=1 << 18):
    """Sends a Connection: close request on a new connection; returns (status or 'closed' / 'timeout' / 'refused',
    the response's bytes: head and body, up to `limit`). A response that never ends (a stream) is cut at `timeout`."""
    data = b""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as sock:
            try:
                sock.sendall(payload)
            except OSError:
                pass
            while len(data) < limit:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
    except socket.timeout:
        if not data:
            return "timeout", data
    except ConnectionRefusedError:
        return "refused", data
    except OSError:
        if not data:
            return "closed", data
    match = re.match(rb"HTTP/1\.[01] (\d{3})", data)
    return (int(match.group(1)) if match else "closed"), data


def response_headers(data):
    head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1")
    headers = {}
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return headers


def request_bytes(method, path, headers=None, body=b""):
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}", "Connection: close"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if body is not None and "Transfer-Encoding" not in (headers or {}):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b"")


MALFORMED_JSON = [b"{", b"[", b'{"data": }', b'{"data": "x"', b'{"data": "x",}', b"nul", b'{"data": 1e}',
                  b'{"data": "\\u12"}', b'{"type": 5, "data": 1}', b'{"data": "x", "extra": 1}', b"[{}]", b"[]",
                  b'{"data": "\xff\xfe"}', b"\x00\x01\x02", b'{"data": [1, 2}', b'"just a string"', b"{" * 5000,
                  b'{"type": "rewind.gap", "data": 1}', b'{"type": "-bad", "data": 1}', b'{"data":"a","data":"b"}']
WRONG_TYPES = ["application/xml", "image/png", "multipart/form-data; boundary=x", "application/octet-stream",
               "text/plain; charset=latin1", "application/x-www-form-urlencoded", "", "json", "application/jso",
               "application/json; charset=utf-16"]
BAD_NAMES = ["-bad", ".dot", "a" * 201, "sp%20ace", "%00", "semi;colon", "%2F..%2Fetc", "uni%C3%A9", "*", "a*b",
             "%FF", "tab%09", "q?x"]
BAD_AUTH = ["Bearer", "Bearer ", "Bearer not.a.jwt", "Bearer " + "A" * 6000, "Basic dXNlcjpwYXNz", "Bearer eyJ.eyJ.sig",
            "Bearer \x7f\x80\xff", "garbage", "Bearer eyJhbGciOiJub25lIn0.eyJyZXdpbmQiOnsiYWRtaW4iOnRydWV9fQ."]


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Tokens:
    """Under --auth: the server's secret file and every token of the run. Tokens are minted with the binary's
    `rewind token`; the altered, tampered and alg "none" ones are built here from them."""

    def __init__(self, binary, workdir):
        self.binary = binary
        self.secret = os.urandom(48).hex()
        self.secret_file = self.write_secret(workdir, "jwt-secret", self.secret)
        self.other_secret = os.urandom(48).hex()
        other_file = self.write_secret(workdir, "other-jwt-secret", self.other_secret)
        self.publisher = self.mint("--publish", "flood.*", "--subscribe", "flood.*", "--subject", "flood-publisher")
        self.subscriber = self.mint("--subscribe", "flood.*", "--subject", "flood-subscriber")
        self.admin = self.mint("--admin", "--subject", "flood-admin")
        self.outsider = self.mint("--publish", "other.*", "--subscribe", "other.*", "--subject", "flood-outsider")
        self.forged = self.mint("--admin", "--subject", "flood-forger", secret_file=other_file)
        self.expired = self.mint("--admin", "--subject", "flood-expired", ttl="1s")
        self.expired_after = time.monotonic() + 2.5  # its exp is at most 1 s from now; a margin for rounding
        header, payload, signature = self.publisher.split(".")
        flipped = "B" if signature[0] == "A" else "A"  # the first character: all six of its bits are signature bits
        self.altered = f"{header}.{payload}.{flipped}{signature[1:]}"
        claims = json.loads(b64url_decode(payload))
        claims["rewind"] = {"admin": True}
        self.tampered = f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"
        none_claims = {"sub": "flood-none", "exp": int(time.time()) + 3600, "rewind": {"admin": True}}
        self.alg_none = (b64url(b'{"alg":"none","typ":"JWT"}') + "." + b64url(json.dumps(none_claims).encode()) + ".")

    @staticmethod
    def write_secret(workdir, name, secret):
        path = os.path.join(workdir, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as file:
            file.write(secret + "\n")
        return path

    def mint(self, *scopes, secret_file=None, ttl="1h"):
        command = [self.binary, "token", "--secret-file", secret_file or self.secret_file, *scopes, "--ttl", ttl]
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
        token = result.stdout.strip()
        if result.returncode != 0 or token.count(".") != 2:
            raise SystemExit(f"flood-test: `rewind token {' '.join(scopes)} --ttl {ttl}` failed "
                             f"({result.returncode}): {result.stderr.strip()[:300]}")
        return token

    def named(self):
        return {"publisher": self.publisher, "subscriber": self.subscriber, "admin": self.admin,
                "outsider": self.outsider, "other-secret": self.forged, "expired": self.expired,
                "altered-signature": self.altered, "tampered-payload": self.tampered, "alg-none": self.alg_none}


def bearer(token):
    return {"Authorization": f"Bearer {token}"} if token else {}


# What the bad-auth flood sends under --auth, one after the other: each must be refused (401; 403 for out-of-scope).
AUTH_VARIANTS = ["no-token", "garbage-bearer", "other-secret", "altered-signature", "tampered-payload", "expired",
                 "alg-none", "out-of-scope", "bad-header-valid-cookie"]


class Flood:
    def __init__(self, port, deadline, max_requests, tokens=None):
        self.port = port
        self.deadline = deadline
        self.max_requests = max_requests
        self.tokens = tokens
        # The token the parser-facing kinds carry under --auth, so that they get past auth to what they test.
        self.publisher = bearer(tokens.publisher if tokens else None)
        self.admin = bearer(tokens.admin if tokens else None)
        self.lock = threading.Lock()
        self.statuses = collections.Counter()  # (kind, status)
        self.unexpected = collections.Counter()  # (kind, what, status)

    def record(self, kind, status, allowed, what):
        with self.lock:
            self.statuses[(kind, status)] += 1
            if status not in allowed:
                self.unexpected[(kind, what, status)] += 1

    def flag(self, kind, what, problem):
        with self.lock:
            self.unexpected[(kind, what, problem)] += 1

    def loop(self, kind, step):
        rng = random.Random(kind)
        for n in range(self.max_requests):
            if time.monotonic() >= self.deadline:
                return
            step(rng, n)

    def malformed_json(self):
        connection = http.client.HTTPConnection(HOST, self.port, timeout=10)

        def step(rng, n):
            nonlocal connection
            body = rng.choice(MALFORMED_JSON)
            content_type = rng.choice(["application/json", "application/x-ndjson"])
            try:
                connection.request("POST", "/v1/streams/flood.junk/events", body=body,
                                   headers={"Content-Type": content_type, **self.publisher})
                response = connection.getresponse()
                response.read()
                status = response.status
                if response.getheader("Connection", "").lower() == "close":
                    connection.close()
            except (OSError, http.client.HTTPException):
                status = "closed"
                connection.close()
                connection = http.client.HTTPConnection(HOST, self.port, timeout=10)
            self.record("malformed-json", status, {400, 413, 415}, f"{content_type} {body[:40]!r}")

        self.loop("malformed-json", step)
        connection.close()

    def wrong_content_type(self):
        def step(rng, n):
            content_type = rng.choice(WRONG_TYPES)
            headers = {"Content-Type": content_type} if content_type else {}
            headers.update(self.publisher)
            payload = request_bytes("POST", "/v1/streams/flood.junk/events", headers, b'{"data": "x"}')
            self.record("wrong-content-type", raw_exchange(self.port, payload), {415}, repr(content_type))

        self.loop("wrong-content-type", step)

    def bad_stream_name(self):
        def step(rng, n):
            name = rng.choice(BAD_NAMES)
            method, suffix = rng.choice([("POST", "/events"), ("GET", "/events"), ("GET", ""), ("DELETE", ""),
                                         ("GET", "/events/1")])
            headers = {"Content-Type": "application/json", "Accept": "application/json", **self.admin}
            payload = request_bytes(method, f"/v1/streams/{name}{suffix}", headers, b'{"data": "x"}')
            # A name holding `?` leaves a path such as `POST /v1/streams/q`, which exists without POST: 405.
            self.record("bad-stream-name", raw_exchange(self.port, payload), {400, 404, 405, "closed"},
                        f"{method} /v1/streams/{name}{suffix}")

        self.loop("bad-stream-name", step)

    def oversized(self):
        big = b'{"data": "' + b"x" * (MAX_BODY + 4096) + b'"}'

        def step(rng, n):
            form = n % 3
            if form == 0:  # honest Content-Length over the limit
                payload = request_bytes("POST", "/v1/streams/flood.big/events",
                                        {"Content-Type": "application/json", **self.publisher}, big)
                what = "Content-Length over the limit"
            elif form == 1:  # chunked, no length announced
                chunks = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 65536]), big[i:i + 65536])
                                  for i in range(0, len(big), 65536))
                payload = request_bytes("POST", "/v1/streams/flood.big/events",
                                        {"Content-Type": "application/json", "Transfer-Encoding": "chunked",
                                         **self.publisher},
                                        None) + chunks + b"0\r\n\r\n"
                what = "chunked body over the limit"
            else:  # one event over --max-event-bytes inside a body under the limit
                payload = request_bytes("POST", "/v1/streams/flood.big/events",
                                        {"Content-Type": "text/plain", **self.publisher}, b"y" * (128 * 1024))
                what = "event over --max-event-bytes"
            self.record("oversized", raw_exchange(self.port, payload, timeout=10), {413, "closed"}, what)

        self.max_requests_for_oversized = min(self.max_requests, 300)
        for n in range(self.max_requests_for_oversized):
            if time.monotonic() >= self.deadline:
                return
            step(None, n)

    def bad_auth(self):
        if self.tokens:
            return self.refused_tokens()

        def step(rng, n):
            auth = rng.choice(BAD_AUTH)
            if n % 2:
                payload = request_bytes("GET", "/v1/streams/flood.a/events?limit=1",
                                        {"Authorization": auth, "Accept": "application/json"})
                allowed = {200, 400, 401, 431}  # 200 with auth off (the header is ignored)
            else:
                payload = request_bytes("POST", "/v1/streams/flood.junk/events",
                                        {"Authorization": auth, "Content-Type": "application/json"}, b"{broken")
                allowed = {400, 401, 431}
            self.record("bad-authorization", raw_exchange(self.port, payload), allowed, repr(auth[:30]))

        self.loop("bad-authorization", step)

    def refused_tokens(self):
        """Under --auth: every request carries a token the server must refuse (or none), on the flood streams."""
        tokens = self.tokens
        by_variant = {"other-secret": tokens.forged, "altered-signature": tokens.altered,
                      "tampered-payload": tokens.tampered, "expired": tokens.expired, "alg-none": tokens.alg_none,
                      "out-of-scope": tokens.outsider}
        # The expired token is used only once it has expired (the baseline usually covers the wait).
        time.sleep(max(0.0, min(tokens.expired_after, self.deadline) - time.monotonic()))

        def step(rng, n):
            variant = AUTH_VARIANTS[n % len(AUTH_VARIANTS)]
            stream = STREAMS[n % len(STREAMS)]
            shape = rng.randrange(4)
            if shape == 0:
                method, path = "POST", f"/v1/streams/{stream}/events"
                headers = {"Content-Type": "application/json"}
                body = json.dumps({"type": "forbidden", "data": f"bad-auth {variant} {n}"}).encode()
            elif shape == 1:
                method, path, headers, body = "GET", f"/v1/streams/{stream}/events?limit=1", {"Accept": "application/json"}, b""
            elif shape == 2:
                method, path = "GET", "/v1/events?stream=flood.*&from=earliest"
                headers, body = {"Accept": "text/event-stream"}, b""
            else:
                method, path, headers, body = "DELETE", f"/v1/streams/{stream}", {}, b""
            token, source = by_variant.get(variant), None
            if variant == "garbage-bearer":
                headers["Authorization"] = rng.choice(BAD_AUTH)
                source = repr(headers["Authorization"][:30])
            elif variant == "bad-header-valid-cookie":
                headers.update({"Authorization": "Bearer not.a.jwt", "Cookie": f"rewind_token={tokens.publisher}"})
            elif token:
                source = ["Authorization", "rewind_token cookie", "access_token query"][rng.randrange(3)]
                if source == "Authorization":
                    headers.update(bearer(token))
                elif source == "rewind_token cookie":
                    headers["Cookie"] = f"theme=dark; rewind_token={token}"
                else:
                    path += ("&" if "?" in path else "?") + f"access_token={token}"
            what = f"{method} {path.split('?')[0]}" + (f" ({source})" if source else "")
            expected = 403 if variant == "out-of-scope" else 401
            if any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F for c in headers.get("Authorization", "")):
                expected = 400  # a control character makes it invalid HTTP: the parser refuses it before auth runs
            kind = f"bad-auth/{variant}"
            status, response = full_exchange(self.port, request_bytes(method, path, headers, body))
            self.record(kind, status, {expected}, what)
            if status != expected or status == 400:
                return
            answer = response_headers(response)
            challenge = answer.get("www-authenticate", "")
            if not challenge.startswith("Bearer"):
                self.flag(kind, what, f"{status} without a Bearer WWW-Authenticate")
            elif expected == 403 and "insufficient_scope" not in challenge:
                self.flag(kind, what, f"403 whose WWW-Authenticate is not insufficient_scope: {challenge[:80]}")
            if not answer.get("content-type", "").startswith("application/problem+json"):
                self.flag(kind, what, f"{status} with Content-Type {answer.get('content-type')!r}")
            sent = tokens.publisher if variant == "bad-header-valid-cookie" else token
            signature = sent.rsplit(".", 1)[1] if sent else ""
            if signature and signature.encode() in response:
                self.flag(kind, what, f"{status} whose answer echoes the token's signature")

        self.loop("bad-auth", step)

    def truncated(self):
        def step(rng, n):
            full = request_bytes("POST", "/v1/streams/flood.junk/events",
                                 {"Content-Type": "application/json", **self.publisher}, b'{"data": "truncated request"}')
            cut = full[:rng.randint(1, len(full) - 1)]
            # The client half-closes: the server sees end of input mid-request and must not commit anything.
            status = raw_exchange(self.port, cut, timeout=5, half_close=True)
            where = "body shorter than its Content-Length" if b"\r\n\r\n" in cut else "request head cut short"
            self.record("truncated", status, {400, "closed", "timeout"}, f"{where}, then end of input")

        self.loop("truncated", step)

    def garbage(self):
        def step(rng, n):
            form = n % 4
            if form == 0:
                payload = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 2048)))
            elif form == 1:
                payload = b"GET /\x00\xff HTTP/1.1\r\nHost: \x01\r\n\r\n"
            elif form == 2:
                payload = b"POST /v1/streams/flood.junk/events HTTP/1.1\r\nContent-Length: -5\r\n\r\n"
            else:
                payload = b"GET /v1/streams HTTP/9.9\r\n" + b"X: " + b"h" * 70000 + b"\r\n\r\n"
            self.record("garbage", raw_exchange(self.port, payload, timeout=5, half_close=True),
                        {400, 404, 413, 431, "closed", "timeout"}, f"form {form}")

        self.loop("garbage", step)


def slowloris(port, count, stop, results):
    """Opens `count` connections that send part of a request head; even ones then stall, odd ones trickle a byte
    every 2 s. Counts, per mode, the connections the server closed (or answered) and those still open at the end."""
    socks = []
    for i in range(count):
        mode = "stalled" if i % 2 == 0 else "trickling"
        try:
            sock = socket.create_connection((HOST, port), timeout=5)
            sock.sendall(f"GET /v1/streams HTTP/1.1\r\nHost: {HOST}\r\nX-Slow-{i}: ".encode())
            sock.setblocking(False)
            socks.append((sock, mode))
            results[f"{mode}: opened"] += 1
        except OSError:
            results[f"{mode}: refused"] += 1
    open_socks = list(socks)
    while not stop.wait(2.0):
        for entry in list(open_socks):
            sock, mode = entry
            try:
                if mode == "trickling":
                    sock.send(b"a")
                sock.recv(4096)  # an answer (408, 431, 400) or the end of the connection: either way, it is over
                raise ConnectionResetError
            except BlockingIOError:
                pass
            except OSError:
                results[f"{mode}: closed by the server"] += 1
                open_socks.remove(entry)
    for sock, mode in open_socks:
        results[f"{mode}: still open at the end"] += 1
    for sock, _ in socks:
        sock.close()


# MARK: - Checks


def read_log(port, failures, headers=None):
    events = []
    after = 0
    while True:
        status, body, _ = http_request_or_fail(port, "GET", f"/v1/events?stream=*&after={after}&limit=10000",
                                               headers={"Accept": "application/json", **(headers or {})}, timeout=30)
        page = json.loads(body)
        if status != 200:
            failures.append(f"reading the log failed: {status} {page}")
            return events
        if not page["events"]:
            return events
        events += [(e["id"], e["stream"], e["data"]) for e in page["events"]]
        after = page["next_after"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("binary_path", nargs="?", metavar="BINARY", help="the rewind binary (same as --binary)")
    parser.add_argument("--binary", default=".build/debug/rewind")
    parser.add_argument("--duration", type=float, default=20, help="seconds of flood")
    parser.add_argument("--baseline", type=float, default=3, help="seconds of valid publishing alone, first")
    parser.add_argument("--publishers", type=int, default=4)
    parser.add_argument("--subscribers", type=int, default=3)
    parser.add_argument("--slowloris", type=int, default=40, help="connections that never finish their request head")
    parser.add_argument("--idle-timeout", type=float, default=5,
                        help="--idle-timeout given to a server that has the option (seconds); below --duration")
    parser.add_argument("--flood-requests", type=int, default=20000, help="most requests per flood thread")
    parser.add_argument("--min-rate", type=float, default=20, help="least acknowledged events/s during the flood")
    parser.add_argument("--auth", action="store_true",
                        help="run the server with JWT auth (--jwt-secret-file) and flood it with refused tokens too")
    args = parser.parse_args()
    args.binary = args.binary_path or args.binary
    if not os.path.exists(args.binary):
        sys.exit(f"flood-test: no server binary at {args.binary}")
    if shutil.which("sqlite3") is None:
        sys.exit("flood-test: sqlite3 is needed for PRAGMA integrity_check (apt-get install sqlite3)")

    serve_help = subprocess.run([args.binary, "serve", "--help"], capture_output=True, text=True).stdout
    has_idle_timeout = "--idle-timeout" in serve_help
    extra_args = ["--idle-timeout", f"{args.idle_timeout:g}s"] if has_idle_timeout else []
    if args.auth and "--jwt-secret-file" not in serve_help:
        sys.exit(f"flood-test: --auth needs a binary whose serve has --jwt-secret-file; {args.binary} has not")
    workdir = tempfile.mkdtemp(prefix="rewind-flood-")
    tokens = Tokens(args.binary, workdir) if args.auth else None
    if tokens:
        extra_args += ["--jwt-secret-file", tokens.secret_file]
    server = start_server(args.binary, workdir, MAX_BODY, extra_args)
    failures = []
    try:
        port = server.port
        print(f"flood-test: server on {HOST}:{port} (pid {server.process.pid}), --max-body-bytes {MAX_BODY}, "
              f"work directory {workdir}", flush=True)

        if tokens:
            print(f"flood-test: auth on (--jwt-secret-file); tokens minted with `{args.binary} token`; the reconnecting "
                  f"subscriber sends its token as access_token, the others and the publishers as Authorization",
                  flush=True)
        query_token = f"&access_token={tokens.subscriber}" if tokens else ""
        header_token = bearer(tokens.subscriber if tokens else None)
        subscribers = [Subscriber(port, "flood.*", "stream=flood.*" + query_token, STREAMS, reconnect_every=4)]
        for i in range(1, args.subscribers):
            stream = STREAMS[i % len(STREAMS)]
            subscribers.append(Subscriber(port, stream, f"stream={stream}", [stream], headers=header_token))
        for subscriber in subscribers:
            subscriber.start()

        publishers = Publishers(port, args.publishers, bearer(tokens.publisher if tokens else None))
        publishers.start("baseline")
        time.sleep(args.baseline)
        publishers.finish()
        baseline_events = len(publishers.acked)
        baseline_rate = baseline_events / args.baseline if args.baseline else 0

        stop_slow = threading.Event()
        slow_results = collections.Counter()
        slow_thread = threading.Thread(target=slowloris, args=(port, args.slowloris, stop_slow, slow_results), daemon=True)
        slow_thread.start()
        flood_start = time.monotonic()
        flood = Flood(port, flood_start + args.duration, args.flood_requests, tokens)
        flood_threads = [threading.Thread(target=target, daemon=True) for target in
                         (flood.malformed_json, flood.wrong_content_type, flood.bad_stream_name, flood.oversized,
                          flood.bad_auth, flood.truncated, flood.garbage)]
        for thread in flood_threads:
            thread.start()
        publishers.start("flood")
        time.sleep(args.duration)
        publishers.finish()
        flood_events = len(publishers.acked) - baseline_events
        flood_elapsed = time.monotonic() - flood_start
        for thread in flood_threads:
            thread.join(timeout=30)
            if thread.is_alive():
                failures.append("a flood thread did not stop within 30 s of its deadline")
        stop_slow.set()
        slow_thread.join(timeout=10)
        if not server.alive():
            failures.append(f"the server died during the flood (exit {server.process.returncode})")
            raise RuntimeError

        # Subscribers: every acknowledged id of their streams, in order, no duplicate.
        acked = publishers.acked
        for subscriber in subscribers:
            covered = [a[0] for a in acked if a[1] in subscriber.streams]
            subscriber.target = max(covered) if covered else 0
        catch_up = time.monotonic() + 20
        for subscriber in subscribers:
            subscriber.join(timeout=max(0.1, catch_up - time.monotonic()))
            subscriber.give_up.set()
        events = read_log(port, failures, bearer(tokens.admin if tokens else None))
        by_id = {e[0]: e for e in events}
        for subscriber in subscribers:
            ids = subscriber.ids
            covered = sorted(a[0] for a in acked if a[1] in subscriber.streams)
            seen = set(ids)
            problems = []
            if len(ids) != len(seen):
                problems.append(f"{len(ids) - len(seen)} duplicate ids")
            if any(b <= a for a, b in zip(ids, ids[1:])):
                problems.append("ids out of order")
            missing = [i for i in covered if i not in seen]
            if missing:
                problems.append(f"{len(missing)} acknowledged ids never arrived (first {missing[0]})")
            foreign = [i for i in ids if i not in by_id or by_id[i][1] not in subscriber.streams]
            if foreign:
                problems.append(f"{len(foreign)} ids not in the log or of another stream (first {foreign[0]})")
            print(f"flood-test: subscriber {subscriber.name}: {len(ids)} events over {subscriber.connections} "
                  f"connection(s){'; ' + '; '.join(problems) if problems else ', in order, no gap, no duplicate'}")
            failures += [f"subscriber {subscriber.name}: {p}" for p in problems]

        # The log: every acknowledged event exactly once, with its stream and data.
        ids = [e[0] for e in events]
        if len(ids) != len(set(ids)):
            failures.append(f"{len(ids) - len(set(ids))} duplicate ids in the log")
        changed = [a for a in acked if by_id.get(a[0]) != a]
        if changed:
            failures.append(f"{len(changed)} acknowledged events missing or changed; first {changed[0]} "
                            f"found {by_id.get(changed[0][0])}")
        junk = [e for e in events if e[1] not in STREAMS]
        if junk:
            failures.append(f"{len(junk)} events from invalid requests were committed; first {junk[0]}")
        if tokens:
            refused = [e for e in events if isinstance(e[2], str) and e[2].startswith("bad-auth ")]
            if refused:
                failures.append(f"{len(refused)} events published with a refused token were committed; first {refused[0]}")
        acked_ids = {a[0] for a in acked}
        unacked = [e for e in events if e[0] not in acked_ids]
        print(f"flood-test: log: {len(events)} events, {len(acked)} acknowledged, "
              f"{len(unacked)} committed without an answer to the publisher")

        # Publishers: no error, not starved.
        rate = flood_events / flood_elapsed
        print(f"flood-test: valid publishers: {baseline_rate:.0f} events/s alone, {rate:.0f} events/s during the flood "
              f"({flood_events} events in {flood_elapsed:.1f} s, {publishers.requests} requests in all)")
        if publishers.errors:
            failures.append(f"{len(publishers.errors)} valid publish requests failed; first: {publishers.errors[0]}")
        if rate < args.min_rate:
            failures.append(f"valid publishers starved: {rate:.1f} events/s during the flood, below --min-rate {args.min_rate}")
        for subscriber in subscribers:
            if subscriber.errors and subscriber.errors[0] not in ("server closed the stream",):
                print(f"flood-test: note: subscriber {subscriber.name} reconnects: {subscriber.errors[:3]}")

        # Invalid traffic: statuses.
        total = sum(flood.statuses.values())
        print(f"flood-test: invalid requests: {total} in {flood_elapsed:.1f} s")
        kinds = sorted({kind for kind, _ in flood.statuses})
        width = max([20] + [len(kind) + 1 for kind in kinds])
        for kind in kinds:
            summary = ", ".join(f"{status}: {count}" for (k, status), count in
                                sorted(flood.statuses.items(), key=lambda item: str(item[0][1])) if k == kind)
            print(f"  {kind:{width}} {summary}")
        server_errors = [(k, s) for (k, s) in flood.statuses if isinstance(s, int) and s >= 500]
        if server_errors:
            failures.append(f"5xx answers to invalid requests: {server_errors}")
        for (kind, what, status), count in flood.unexpected.most_common(12):
            failures.append(f"{kind}: {what} -> {status} ({count} times)")
        if tokens:
            unsent = [v for v in AUTH_VARIANTS if not any(k == f"bad-auth/{v}" for k, _ in flood.statuses)]
            if unsent:
                failures.append(f"bad-auth: never sent {', '.join(unsent)} (flood too short?)")
        print("flood-test: slowloris connections: " + ", ".join(f"{k}: {v}" for k, v in sorted(slow_results.items())))
        left_open = {mode: slow_results[f"{mode}: still open at the end"] for mode in ("stalled", "trickling")}
        for mode, count in left_open.items():
            if not count:
                continue
            if has_idle_timeout:
                failures.append(f"{count} {mode} slowloris connections were still open after {flood_elapsed:.0f} s "
                                f"with --idle-timeout {args.idle_timeout:g}s")
            else:
                print(f"flood-test: note: this binary has no --idle-timeout; the server kept {count} {mode} "
                      f"connections with an unfinished request head open for the whole {flood_elapsed:.0f} s flood")
    except RuntimeError:
        pass
    finally:
        alive = server.alive()
        server.stop()
    if alive and server.process.returncode not in (0, -signal.SIGTERM):
        failures.append(f"the server exited with {server.process.returncode} on SIGTERM")

    with open(server.log_path, errors="replace") as log:
        server_log = log.read()
    logged_5xx = len(re.findall(r"http\.status=5\d\d", server_log))
    if logged_5xx or "request failed" in server_log:
        failures.append(f"the server log has {logged_5xx} 5xx answers / failed requests; see {server.log_path}")
    if tokens:
        leaked = []
        for name, token in tokens.named().items():
            if token in server_log:
                leaked.append(f"the {name} token")
            signature = token.rsplit(".", 1)[1]
            if signature and signature in server_log:
                leaked.append(f"the {name} token's signature")
        for name, secret in (("server's", tokens.secret), ("other", tokens.other_secret)):
            if secret in server_log:
                leaked.append(f"the {name} secret")
        print(f"flood-test: server log ({len(server_log)} bytes): {len(tokens.named())} tokens, their signatures and "
              f"2 secrets looked for, {'found: ' + ', '.join(leaked) if leaked else 'none found'}")
        if leaked:
            failures.append(f"the server log contains {', '.join(leaked)}; see {server.log_path}")
    check = subprocess.run(["sqlite3", server.db, "PRAGMA integrity_check"], capture_output=True, text=True)
    print(f"flood-test: PRAGMA integrity_check: {check.stdout.strip() or check.stderr.strip()}")
    if check.stdout.strip() != "ok":
        failures.append(f"integrity_check: {check.stdout.strip()} {check.stderr.strip()}")

    if failures:
        print("flood-test: FAILED", file=sys.stderr)
        for failure in failures:
            print(f"  - {failure}", file=sys.stderr)
        print(f"flood-test: server log and database kept in {workdir}", file=sys.stderr)
        sys.exit(1)
    shutil.rmtree(workdir, ignore_errors=True)
    print("flood-test: passed")


if __name__ == "__main__":
    main()
