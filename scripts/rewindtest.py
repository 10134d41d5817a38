"""Shared by the end-to-end scripts: free ports, waiting, plain HTTP, the Rewind server as a process (started on a
SQLite file or a PostgreSQL URL, stopped gracefully or killed), the throwaway PostgreSQL cluster of
`scripts/postgres-cluster.sh`, and a small Server-Sent Events reader. Standard library only; only talks to
127.0.0.1; stops only the processes it started, by PID.
"""
import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse

SCRIPTS = os.path.dirname(os.path.abspath(__file__))


class TestFailure(Exception):
    pass


@contextlib.contextmanager
def scratch_directory(name):
    """A temporary directory for the test `name`, removed afterwards; a TestFailure inside prints
    "<name> test FAILED: ..." and exits with status 1."""
    workdir = tempfile.mkdtemp(prefix=f"rewind-{name}-")
    try:
        yield workdir
    except TestFailure as failure:
        print(f"{name} test FAILED: {failure}")
        sys.exit(1)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, seconds, what, interval=0.1):
    """Calls condition until it returns something truthy, which it returns; fails after `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise TestFailure(f"timed out after {seconds} s waiting for {what}")


def http_get(port, path, timeout=2, ssl_context=None):
    """(status, body) of a GET on 127.0.0.1, or None when nothing answers."""
    answer = http_request(port, "GET", path, timeout=timeout, ssl_context=ssl_context)
    return None if answer is None else answer[:2]


def http_request(port, method, path, body=None, headers=None, timeout=5, ssl_context=None):
    """(status, body, headers as a lower-cased dict) of one request on 127.0.0.1, or None when nothing answers.
    With `ssl_context` (see `https_context`) the request goes over HTTPS."""
    if ssl_context is None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    else:
        connection = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ssl_context)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()


def stop_process(process, seconds=10):
    """SIGTERM to this one process, SIGKILL if it has not exited after `seconds`."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=seconds)


class Rewind:
    """The Rewind server on a fixed port and database (a file path or a postgres:// URL; by default
    `rewind.sqlite` in `workdir`), which can be stopped with SIGTERM, killed with SIGKILL and started again.
    `env` is the server's whole environment (by default this process's); `retry` and `host` are given as flags
    unless None (then the configuration decides); with `ssl_context` the server is serving HTTPS and is asked for
    /healthz that way."""

    def __init__(self, binary, workdir, port, extra_args=(), db=None, log_name="rewind.log", env=None, retry=300,
                 host="127.0.0.1", ssl_context=None):
        self.port = port
        self.log_path = os.path.join(workdir, log_name)
        self.db = db or os.path.join(workdir, "rewind.sqlite")
        self.command = [binary, "serve", *(["--host", host] if host is not None else []), "--port", str(port),
                        "--db", self.db, *(["--retry", str(retry)] if retry is not None else []), *extra_args]
        self.env = env
        self.ssl_context = ssl_context
        self.process = None

    def start(self, seconds=30):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        wait_until(self._healthy, seconds, "Rewind to answer GET /healthz with 200")

    def _healthy(self):
        if self.process.poll() is not None:
            raise TestFailure(f"Rewind exited at start with status {self.process.returncode}:\n{self.log_tail()}")
        answer = http_get(self.port, "/healthz", ssl_context=self.ssl_context)
        return answer is not None and answer[0] == 200

    def stop_gracefully(self):
        """SIGTERM and wait for the exit; a server that does not stop within 30 s fails the test."""
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise TestFailure("Rewind did not exit within 30 s of SIGTERM")

    def kill(self):
        """SIGKILL, as a crash: nothing is flushed or closed."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def restart(self):
        self.stop_gracefully()
        time.sleep(1)
        self.start()

    def stop(self):
        if self.process is not None:
            stop_process(self.process, seconds=30)

    def log_tail(self, lines=20):
        """The last lines of the server's log, without the access-log lines of successful requests."""
        with open(self.log_path, errors="replace") as log:
            return "".join([line for line in log if "http.status=2" not in line][-lines:])

    def log_text(self):
        """The server's whole log, every line."""
        with open(self.log_path, errors="replace") as log:
            return log.read()

    def alive(self):
        return self.process is not None and self.process.poll() is None


class PostgresCluster:
    """The throwaway cluster of `scripts/postgres-cluster.sh` in `directory` (started if it is not running), with
    a fresh database per use. Stopping it fast or immediately (a crash) and starting it again keeps its data."""

    def __init__(self, directory):
        self.directory = directory
        self.url = self._script("start").strip()
        self._databases = 0

    def _script(self, *args):
        result = subprocess.run([os.path.join(SCRIPTS, "postgres-cluster.sh"), args[0], self.directory, *args[1:]],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise TestFailure(f"postgres-cluster.sh {' '.join(args)} failed: {result.stderr.strip()}")
        return result.stdout

    def psql(self, sql, url=None):
        """Runs SQL as the cluster's `rewind` role (on `url`'s database, by default `rewind`); returns the output
        rows as unaligned text."""
        result = subprocess.run([psql_binary(), "--no-psqlrc", "--quiet", "--tuples-only", "--no-align",
                                 "--set=ON_ERROR_STOP=1", "--dbname", url or self.url, "--command", sql],
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            raise TestFailure(f"psql failed: {result.stderr.strip()}")
        return result.stdout

    def database(self, prefix="rewind_e2e"):
        """A new empty database owned by `rewind`; returns its URL."""
        self._databases += 1
        name = f"{prefix}_{os.getpid()}_{self._databases}_{int(time.time())}"
        self.psql(f"CREATE DATABASE {name}")
        parts = urllib.parse.urlsplit(self.url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))

    def drop_database(self, url):
        """Drops a database made by `database()` (given by its URL), ending its sessions first."""
        name = urllib.parse.urlsplit(url).path.lstrip("/")
        if not name.replace("_", "").isalnum():
            raise TestFailure(f"not a database name of this cluster: {name!r}")
        # FORCE ends the role's own sessions, but not an autovacuum worker busy on a database that just grew (only
        # a superuser may end those); it finishes within seconds, so try again for a while.
        deadline = time.monotonic() + 30
        while True:
            try:
                self.psql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                return
            except TestFailure:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(1)

    def stop(self, mode="fast"):
        self._script("stop", mode)

    def start(self):
        self._script("start")


def psql_binary():
    for candidate in (os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin") + "/psql", "/usr/bin/psql"):
        if os.access(candidate, os.X_OK):
            return candidate
    raise TestFailure("no psql: install Debian's postgresql package")


class SSEReader:
    """One Server-Sent Events stream over a raw socket: `events()` yields (id, event type, data) per dispatched
    event until the stream ends, `deadline` (monotonic) passes or `stop()` returns true. Comments and `retry:` lines
    are skipped. An event cut short by the deadline or `stop` is finished by the next call. `first_bytes_at` is when
    the body's first bytes arrived (monotonic); `error` is the socket error that ended the stream, if one did."""

    def __init__(self, port, path, last_event_id=None, headers=None, timeout=5):
        self.socket = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Accept: text/event-stream"]
        if last_event_id is not None:
            lines.append(f"Last-Event-ID: {last_event_id}")
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.socket.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.file = self.socket.makefile("rb")
        status_line = self.file.readline().decode("latin-1")
        self.status = int(status_line.split()[1]) if status_line else 0
        self.headers = {}
        while True:
            line = self.file.readline().decode("latin-1").rstrip("\r\n")
            if not line:
                break
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self.chunked = self.headers.get("transfer-encoding", "").lower() == "chunked"
        self._buffer = b""
        self._event = (None, None, [])
        self.first_bytes_at = None
        self.error = None

    def _read_more(self):
        if not self.chunked:
            return self.file.read1(65536)
        size_line = self.file.readline()
        if not size_line:
            return b""
        size = int(size_line.strip().split(b";")[0] or b"0", 16)
        if size == 0:
            return b""
        data = self.file.read(size)
        self.file.readline()
        return data

    def events(self, deadline=None, stop=None):
        event_id, event_type, data = self._event
        while deadline is None or time.monotonic() < deadline:
            while b"\n" not in self._buffer:
                if stop is not None and stop():
                    self._event = (event_id, event_type, data)
                    return
                try:
                    more = self._read_more()
                except (socket.timeout, TimeoutError):
                    if deadline is not None and time.monotonic() >= deadline:
                        self._event = (event_id, event_type, data)
                        return
                    continue
                except OSError as error:
                    self.error = error
                    return
                if not more:
                    return
                if self.first_bytes_at is None:
                    self.first_bytes_at = time.monotonic()
                self._buffer += more
            raw, _, self._buffer = self._buffer.partition(b"\n")
            line = raw.rstrip(b"\r").decode()
            if not line:
                self._event = (None, None, [])
                if data or event_id is not None:
                    yield event_id, event_type or "message", "\n".join(data)
                event_id, event_type, data = None, None, []
                continue
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "id":
                event_id = value
            elif field == "event":
                event_type = value
            elif field == "data":
                data.append(value)
        self._event = (event_id, event_type, data)

    def close(self):
        try:
            self.socket.close()
        except OSError:
            pass


def publish(port, stream, data, headers=None, ssl_context=None):
    """POSTs one text/plain event; returns (status, parsed JSON body or None, headers), or None when nothing
    answers."""
    answer = http_request(port, "POST", f"/v1/streams/{stream}/events", body=data.encode(),
                          headers={"Content-Type": "text/plain", **(headers or {})}, ssl_context=ssl_context)
    return json_answer(answer)


def https_context(cafile):
    """A client TLS context that trusts only `cafile` (a self-signed test certificate, say)."""
    return ssl.create_default_context(cafile=cafile)


class SSESubscriber(threading.Thread):
    """One SSE stream (an `SSEReader`) read on a thread of its own until the server ends it, `stop()` is called or
    `seconds` pass. `snapshot()` gives the (id, event type, data) received so far, in order; `ended` is set at the
    end and `ended_at` says when (monotonic); `status` is the response's status (None if none came). `error` says
    why the stream ended when it was neither the server closing it nor `stop()`: a socket error, `seconds` passing,
    or no event for `idle` seconds."""

    def __init__(self, port, path, last_event_id=None, headers=None, seconds=None, idle=None, timeout=5, name=None):
        super().__init__(daemon=True, name=name)
        self.port, self.path, self.last_event_id, self.headers = port, path, last_event_id, headers
        self.seconds, self.idle, self.timeout = seconds, idle, timeout
        self.status = None
        self.error = None
        self.ended = threading.Event()
        self.ended_at = None
        self.stopping = False
        self.reader = None
        self._events = []
        self._lock = threading.Lock()
        self._last_event_at = time.monotonic()

    def _should_stop(self):
        return self.stopping or (self.idle is not None and time.monotonic() - self._last_event_at > self.idle)

    def run(self):
        try:
            self.reader = SSEReader(self.port, self.path, self.last_event_id, self.headers, timeout=self.timeout)
            self.status = self.reader.status
            if self.status != 200:
                return
            deadline = None if self.seconds is None else time.monotonic() + self.seconds
            self._last_event_at = time.monotonic()
            for event in self.reader.events(deadline, stop=self._should_stop):
                with self._lock:
                    self._events.append(event)
                self._last_event_at = time.monotonic()
            if self.stopping:
                return
            if self.reader.error is not None:
                self.error = repr(self.reader.error)
            elif self._should_stop():
                self.error = f"no event for {self.idle} s"
            elif deadline is not None and time.monotonic() >= deadline:
                self.error = f"still open after {self.seconds} s"
        except (OSError, ValueError) as error:
            if not self.stopping:
                self.error = repr(error)
        finally:
            self.ended_at = time.monotonic()
            self.ended.set()
            if self.reader is not None:
                self.reader.close()

    def stop(self):
        """Ends the stream from this side: no error is recorded for it."""
        self.stopping = True
        if self.reader is not None:
            try:
                self.reader.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def snapshot(self):
        with self._lock:
            return list(self._events)

    def count(self):
        with self._lock:
            return len(self._events)


def publish_batch(port, stream, datas, headers=None, timeout=5):
    """POSTs one NDJSON batch of events with these data; returns (status, parsed JSON body or None, headers), or
    None when nothing answers. The answer's `ids` are the events' ids."""
    body = "\n".join(json.dumps({"data": data}) for data in datas)
    answer = http_request(port, "POST", f"/v1/streams/{stream}/events", body=body.encode(),
                          headers={"Content-Type": "application/x-ndjson", **(headers or {})}, timeout=timeout)
    return json_answer(answer)


def json_answer(answer):
    """An `http_request` answer with its body parsed as JSON: (status, parsed body or None when it is empty or not
    JSON, headers), or None for None."""
    if answer is None:
        return None
    status, body, response_headers = answer
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    return status, parsed, response_headers


def http_request_or_fail(port, method, path, body=None, headers=None, timeout=5, ssl_context=None):
    """`http_request` for a request that must be answered: (status, body, headers), or TestFailure naming the
    request when nothing answers."""
    answer = http_request(port, method, path, body=body, headers=headers, timeout=timeout, ssl_context=ssl_context)
    if answer is None:
        raise TestFailure(f"{method} {path} on port {port}: no answer (connection refused, reset or timed out)")
    return answer


class Load:
    """A bounded load for the scripts that need a busy server: a thread publishing NDJSON batches of `tick` events
    round-robin over `streams` (batch n holds 1 + n % `most` events, then a `pause`), and `subscribers` live
    `SSESubscriber`s on `subscribe_path`. A publish not answered 201 stops the publisher and a subscriber without an
    event for 5 s stops: both are listed in `errors`. Everything stops after `seconds` or at `finish()`."""

    def __init__(self, port, streams, subscribe_path, subscribers=3, most=4, pause=0.02, seconds=90):
        self.port, self.streams, self.most, self.pause, self.seconds = port, streams, most, pause, seconds
        self.stop = threading.Event()
        self.published = 0
        self.publish_errors = []
        self.thread = threading.Thread(target=self._publish, daemon=True)
        self.subscribers = [SSESubscriber(port, subscribe_path, idle=5, timeout=1, seconds=seconds)
                            for _ in range(subscribers)]

    def start(self):
        for thread in [self.thread, *self.subscribers]:
            thread.start()
        return self

    def _publish(self):
        deadline = time.monotonic() + self.seconds
        n = 0
        while not self.stop.is_set() and time.monotonic() < deadline:
            stream = self.streams[n % len(self.streams)]
            size = 1 + n % self.most
            body = "\n".join(json.dumps({"type": "tick", "data": {"n": n, "i": i}}) for i in range(size))
            answer = http_request(self.port, "POST", f"/v1/streams/{stream}/events", body=body.encode(),
                                  headers={"Content-Type": "application/x-ndjson"}, timeout=10)
            if answer is None or answer[0] != 201:
                self.publish_errors.append("publish got no answer" if answer is None else
                                           f"publish answered {answer[0]}: {answer[1][:200]!r}")
                return
            self.published += size
            n += 1
            time.sleep(self.pause)

    @property
    def errors(self):
        return self.publish_errors + [f"subscriber {index}: {subscriber.error}" for index, subscriber
                                      in enumerate(self.subscribers) if subscriber.error]

    def received(self):
        """Events received by all subscribers together."""
        return sum(subscriber.count() for subscriber in self.subscribers)

    def finish(self):
        self.stop.set()
        for subscriber in self.subscribers:
            subscriber.stop()
        for thread in [self.thread, *self.subscribers]:
            if thread.is_alive():
                thread.join(timeout=15)


def http_attempt(port, method, path, body=None, headers=None, timeout=5):
    """One request on 127.0.0.1 that says how it went: (status, body, headers as a lower-cased dict) when an answer
    came, else (None, "timeout" | "refused" | "reset" | another short reason, {}). Tests that must tell a hung
    request from a refused connection use it instead of `http_request`."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read(), {k.lower(): v for k, v in response.getheaders()}
    except (socket.timeout, TimeoutError):
        return None, "timeout", {}
    except ConnectionRefusedError:
        return None, "refused", {}
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected, http.client.IncompleteRead):
        return None, "reset", {}
    except (OSError, http.client.HTTPException) as error:
        return None, type(error).__name__, {}
    finally:
        connection.close()


def attempt_batch(port, stream, datas, headers=None, timeout=5):
    """POSTs an NDJSON batch (one event per string in `datas`); returns what `http_attempt` returns, the body parsed
    as JSON when it is JSON."""
    body = "".join(json.dumps({"data": data}) + "\n" for data in datas).encode()
    return _parsed(http_attempt(port, "POST", f"/v1/streams/{stream}/events", body=body,
                                headers={"Content-Type": "application/x-ndjson", **(headers or {})}, timeout=timeout))


def attempt_one(port, stream, data, headers=None, timeout=5):
    """POSTs one text/plain event; returns what `http_attempt` returns, the body parsed as JSON when it is JSON."""
    return _parsed(http_attempt(port, "POST", f"/v1/streams/{stream}/events", body=data.encode(),
                                headers={"Content-Type": "text/plain", **(headers or {})}, timeout=timeout))


def _parsed(answer):
    status, body, headers = answer
    if status is None:
        return answer
    try:
        return status, json.loads(body) if body else None, headers
    except ValueError:
        return status, body, headers


def read_log(port, query="stream=*", after=0, page=1000, timeout=10):
    """Every event after `after` that the JSON read `GET /v1/events?<query>` returns, paged by cursor up to the head
    the last page reports; a list of event objects. Fails on any answer but 200."""
    events = []
    while True:
        status, body, _ = http_attempt(port, "GET", f"/v1/events?{query}&after={after}&limit={page}",
                                       headers={"Accept": "application/json"}, timeout=timeout)
        if status != 200:
            raise TestFailure(f"JSON read on port {port} after {after} answered {status or body}")
        answer = json.loads(body)
        events += answer["events"]
        if not answer["events"] or answer["next_after"] >= answer["head"]:
            return events
        after = answer["next_after"]


def metric_sum(port, name):
    """The sum of every sample of metric `name` (all label sets) on the server's /metrics, or None without an
    answer."""
    answer = http_get(port, "/metrics")
    if answer is None or answer[0] != 200:
        return None
    total = 0.0
    for line in answer[1].decode().splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            total += float(line.rsplit(" ", 1)[1])
    return total


def metric_histogram(port, name):
    """{"sum": ..., "count": ...} of histogram `name` on the server's /metrics (all label sets added up), or None
    without an answer."""
    answer = http_get(port, "/metrics")
    if answer is None or answer[0] != 200:
        return None
    totals = {"sum": 0.0, "count": 0.0}
    for line in answer[1].decode().splitlines():
        for part in totals:
            if line.startswith(f"{name}_{part}{{") or line.startswith(f"{name}_{part} "):
                totals[part] += float(line.rsplit(" ", 1)[1])
    return totals


class ResumingSubscriber(threading.Thread):
    """An SSE client that behaves like a browser's EventSource, in a thread: when its stream ends it reconnects
    with `Last-Event-ID`; when a node does not answer (refused, not 200) it tries the next of `ports`, as a client
    behind a list of addresses does. A 204 ends it, as it ends EventSource. It keeps every event id it got
    (`ids`), the `rewind.gap` signals (`gaps`, parsed) and the ports it was served by. `finish(until)` waits until
    it has an id at or past `until` and closes it."""

    def __init__(self, name, ports, path, deadline, last_event_id=None, retry=0.2, read_timeout=5):
        super().__init__(daemon=True, name=name)
        self.ports = list(ports)
        self.path = path
        self.deadline = deadline
        self.last_id = last_event_id
        self.retry = retry
        self.read_timeout = read_timeout
        self.ids, self.gaps, self.resets, self.served_by, self.refusals = [], [], [], [], []
        self.ended_with_204 = False
        self._index = 0
        self._closing = threading.Event()
        self._reader = None
        self._lock = threading.Lock()

    @property
    def port(self):
        return self.ports[self._index % len(self.ports)]

    def run(self):
        while not self._closing.is_set() and time.monotonic() < self.deadline:
            try:
                reader = SSEReader(self.port, self.path, last_event_id=self.last_id, timeout=self.read_timeout)
            except (OSError, ValueError, IndexError):
                self.refusals.append((self.port, "no connection"))
                self._index += 1
                time.sleep(self.retry)
                continue
            with self._lock:
                self._reader = reader
            if self._closing.is_set():
                reader.close()
                return
            if reader.status == 204:
                self.ended_with_204 = True
                reader.close()
                return
            if reader.status != 200:
                self.refusals.append((self.port, reader.status))
                reader.close()
                self._index += 1
                time.sleep(self.retry)
                continue
            self.served_by.append(self.port)
            try:
                for event_id, event_type, data in reader.events(self.deadline):
                    if event_type == "rewind.gap":
                        self.gaps.append(json.loads(data))
                    elif event_type == "rewind.reset":
                        self.resets.append(json.loads(data))
                    elif event_id is not None:
                        self.ids.append(int(event_id))
                    if event_id is not None:
                        self.last_id = event_id
                    if self._closing.is_set():
                        break
            except (OSError, ValueError, UnicodeDecodeError):
                pass
            reader.close()
            time.sleep(self.retry)

    def finish(self, until, seconds):
        """Waits up to `seconds` for an id at or past `until` (None: no wait), then closes the stream and ends the
        thread; returns whether `until` was reached."""
        reached = until is None
        if until is not None:
            end = time.monotonic() + seconds
            while time.monotonic() < end and not (self.ids and self.ids[-1] >= until) and self.is_alive():
                time.sleep(0.05)
            reached = bool(self.ids and self.ids[-1] >= until)
        self.close()
        return reached

    def close(self):
        self._closing.set()
        with self._lock:
            reader = self._reader
        if reader is not None:
            try:
                reader.socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            reader.close()
        self.join(timeout=10)


def start_nginx(workdir, site):
    """nginx run as a process of the test's own, with `site` (server and upstream blocks, as in deploy/) inside a
    minimal main configuration whose pid file, logs and temp directories are in `workdir`; returns the Popen."""
    temp = os.path.join(workdir, "tmp")
    os.makedirs(temp, exist_ok=True)
    with open(os.path.join(workdir, "site.conf"), "w") as out:
        out.write(site)
    user = "user root root;" if os.geteuid() == 0 else ""
    main = f"""
{user}
worker_processes 1;
pid {workdir}/nginx.pid;
error_log {workdir}/nginx-error.log warn;
events {{ worker_connections 512; }}
http {{
    access_log off;
    client_body_temp_path {temp}/body;
    proxy_temp_path {temp}/proxy;
    fastcgi_temp_path {temp}/fastcgi;
    uwsgi_temp_path {temp}/uwsgi;
    scgi_temp_path {temp}/scgi;
    include {workdir}/site.conf;
}}
"""
    config = os.path.join(workdir, "nginx.conf")
    with open(config, "w") as out:
        out.write(main)
    checked = subprocess.run(["nginx", "-t", "-q", "-p", workdir, "-c", config], capture_output=True, text=True)
    if checked.returncode != 0:
        raise TestFailure(f"nginx -t refused the configuration: {checked.stderr.strip()}")
    return subprocess.Popen(["nginx", "-p", workdir, "-c", config, "-g", "daemon off;"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "nginx.out"), "wb"))
