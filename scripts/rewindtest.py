"""Shared by the end-to-end scripts: free ports, waiting, plain HTTP, the Rewind server as a process (started on a
SQLite file or a PostgreSQL URL, stopped gracefully or killed), the throwaway PostgreSQL cluster of
`scripts/postgres-cluster.sh`, and a small Server-Sent Events reader. Standard library only; only talks to
127.0.0.1; stops only the processes it started, by PID.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse

SCRIPTS = os.path.dirname(os.path.abspath(__file__))


class TestFailure(Exception):
    pass


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


def http_get(port, path, timeout=2):
    """(status, body) of a GET on 127.0.0.1, or None when nothing answers."""
    answer = http_request(port, "GET", path, timeout=timeout)
    return None if answer is None else answer[:2]


def http_request(port, method, path, body=None, headers=None, timeout=5):
    """(status, body, headers as a lower-cased dict) of one request on 127.0.0.1, or None when nothing answers."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
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
    `rewind.sqlite` in `workdir`), which can be stopped with SIGTERM, killed with SIGKILL and started again."""

    def __init__(self, binary, workdir, port, extra_args=(), db=None, log_name="rewind.log"):
        self.port = port
        self.log_path = os.path.join(workdir, log_name)
        self.db = db or os.path.join(workdir, "rewind.sqlite")
        self.command = [binary, "serve", "--host", "127.0.0.1", "--port", str(port),
                        "--db", self.db, "--retry", "300", *extra_args]
        self.process = None

    def start(self, seconds=30):
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._healthy, seconds, "Rewind to answer GET /healthz with 200")

    def _healthy(self):
        if self.process.poll() is not None:
            raise TestFailure(f"Rewind exited at start with status {self.process.returncode}:\n{self.log_tail()}")
        answer = http_get(self.port, "/healthz")
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
    event until the stream ends or `deadline` (monotonic) passes. Comments and `retry:` lines are skipped."""

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

    def events(self, deadline=None):
        event_id, event_type, data = None, None, []
        while deadline is None or time.monotonic() < deadline:
            while b"\n" not in self._buffer:
                try:
                    more = self._read_more()
                except (socket.timeout, TimeoutError):
                    if deadline is not None and time.monotonic() >= deadline:
                        return
                    continue
                except OSError:
                    return
                if not more:
                    return
                self._buffer += more
            raw, _, self._buffer = self._buffer.partition(b"\n")
            line = raw.rstrip(b"\r").decode()
            if not line:
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

    def close(self):
        try:
            self.socket.close()
        except OSError:
            pass


def publish(port, stream, data, headers=None):
    """POSTs one text/plain event; returns (status, parsed JSON body or None, headers), or None when nothing
    answers."""
    answer = http_request(port, "POST", f"/v1/streams/{stream}/events", body=data.encode(),
                          headers={"Content-Type": "text/plain", **(headers or {})})
    if answer is None:
        return None
    status, body, response_headers = answer
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    return status, parsed, response_headers
