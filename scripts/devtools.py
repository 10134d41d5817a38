"""Shared by the end-to-end scripts that drive a real browser: Debian's headless Chromium started with remote
debugging and a minimal DevTools-protocol client over a stdlib-only WebSocket (RFC 6455). The server process and
the small helpers come from `rewindtest`. Standard library only; only talks to
127.0.0.1; stops only the processes it started.
"""
import base64
import http.client
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import time
import urllib.parse


from rewindtest import TestFailure, free_port, http_get, stop_process, wait_until, Rewind  # noqa: F401


def find_chromium():
    """Debian's chromium, installed with apt-get when missing and we are root."""
    path = shutil.which("chromium")
    if path:
        return path
    if os.geteuid() != 0:
        raise TestFailure("chromium is not installed; install Debian's chromium package or run as root")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = ["apt-get", "install", "-y", "-qq", "chromium"]
    print("installing chromium with apt-get", flush=True)
    if subprocess.run(install, env=env, stdout=subprocess.DEVNULL, timeout=900).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env, timeout=600)
        if subprocess.run(install, env=env, stdout=subprocess.DEVNULL, timeout=900).returncode != 0:
            raise TestFailure("apt-get could not install chromium")
    path = shutil.which("chromium")
    if not path:
        raise TestFailure("apt-get installed chromium but it is not on PATH")
    return path


class DevTools:
    """A minimal WebSocket client (RFC 6455) for the DevTools protocol: masked text frames out, text frames in."""

    def __init__(self, url, timeout=30):
        parts = urllib.parse.urlsplit(url)
        if parts.hostname != "127.0.0.1":
            raise TestFailure(f"refusing DevTools URL not on 127.0.0.1: {url}")
        self.socket = socket.create_connection(("127.0.0.1", parts.port), timeout=timeout)
        self.reader = self.socket.makefile("rb")
        key = base64.b64encode(os.urandom(16)).decode()
        self.socket.sendall((f"GET {parts.path} HTTP/1.1\r\nHost: 127.0.0.1:{parts.port}\r\nUpgrade: websocket\r\n"
                             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        status = self.reader.readline()
        if b" 101 " not in status:
            raise TestFailure(f"DevTools refused the websocket: {status!r}")
        while self.reader.readline() not in (b"\r\n", b""):
            pass
        self.last_id = 0

    def close(self):
        self.reader.close()
        self.socket.close()

    def _read(self, size):
        data = self.reader.read(size)
        if len(data) != size:
            raise TestFailure("DevTools closed the websocket")
        return data

    def _send(self, text):
        payload = text.encode()
        if len(payload) < 126:
            header = struct.pack("!BB", 0x81, 0x80 | len(payload))
        elif len(payload) < 1 << 16:
            header = struct.pack("!BBH", 0x81, 0x80 | 126, len(payload))
        else:
            header = struct.pack("!BBQ", 0x81, 0x80 | 127, len(payload))
        mask = os.urandom(4)
        self.socket.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def _receive(self):
        """The next text message; a message may span several frames. Ping and pong frames are skipped."""
        message = b""
        while True:
            first, second = self._read(2)
            size = second & 0x7F
            if size == 126:
                size = struct.unpack("!H", self._read(2))[0]
            elif size == 127:
                size = struct.unpack("!Q", self._read(8))[0]
            payload = self._read(size)
            opcode = first & 0x0F
            if opcode == 0x8:
                raise TestFailure("DevTools closed the websocket")
            if opcode in (0x0, 0x1):
                message += payload
                if first & 0x80:
                    return json.loads(message)

    def call(self, method, **params):
        self.last_id += 1
        self._send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = self._receive()
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise TestFailure(f"DevTools {method} failed: {message['error']}")
                return message["result"]

    def evaluate(self, expression):
        """The value of a JavaScript expression in the page; a promise is awaited."""
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise TestFailure(f"page error evaluating {expression!r}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path):
        """Saves the page as it is shown as a PNG file."""
        data = self.call("Page.captureScreenshot", format="png")["data"]
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))


def start_chromium(workdir, stack):
    """Headless chromium with remote debugging; returns a DevTools connection to its blank page."""
    chromium = find_chromium()
    port = free_port()
    log = stack.enter_context(open(os.path.join(workdir, "chromium.log"), "wb"))
    process = subprocess.Popen(
        [chromium, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         f"--remote-debugging-port={port}", f"--user-data-dir={os.path.join(workdir, 'chromium-profile')}",
         "about:blank"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    stack.callback(stop_process, process)

    def page_target():
        if process.poll() is not None:
            raise TestFailure(f"chromium exited at start with status {process.returncode}")
        answer = http_get(port, "/json/list")
        if answer is None or answer[0] != 200:
            return None
        return next((t for t in json.loads(answer[1]) if t.get("type") == "page"), None)

    target = wait_until(page_target, 60, "chromium's DevTools page target")
    devtools = DevTools(target["webSocketDebuggerUrl"])
    stack.callback(devtools.close)
    return devtools
