#!/usr/bin/env python3
"""End-to-end test of `rewind serve --tls-cert --tls-key`: HTTPS with HTTP/2 and HTTP/1.1 by ALPN.

Makes self-signed certificates with Python's `cryptography` (installed from PyPI with `h2` into a virtualenv cached
at .build/tls-test-venv; the script re-runs itself there), starts the built binary with one, and checks:

- with curl `--http2` and `--http1.1` (`%{http_version}` checked): a publish, the JSON read, an SSE replay with
  `Last-Event-ID` and a live event; no `Connection` header over HTTP/2, `Connection: close` on HTTP/1.1 SSE;
- over one HTTP/2 connection (the `h2` library), two subscriptions; the client resets one stream: the other keeps
  receiving, the connection stays up, and the server's subscriber count drops by one;
- SIGHUP with a renewed certificate: a new connection gets it, a stream opened before keeps receiving; SIGHUP with
  a broken key file leaves the process and the certificate in use as they were;
- bad inputs exit 1 with one line naming the file: missing, not PEM, key not matching, expired, not yet valid;
- headless Chromium (scripts/devtools.py) on the https origin opens ten EventSources to ten streams, and every one
  receives its event within 10 s. `--plain-http` runs that part alone against plain HTTP/1.1, where the browser's
  six connections per host leave four of them waiting: that run is expected to fail.

Only talks to 127.0.0.1; stops only the processes it started.
"""
import argparse
import contextlib
import datetime
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
VENV = os.path.join(ROOT, ".build", "tls-test-venv")
sys.path.insert(0, HERE)


def ensure_venv():
    """Re-runs this script inside the virtualenv that has `cryptography` and `h2`."""
    python = os.path.join(VENV, "bin", "python3")
    if os.path.realpath(sys.prefix) == os.path.realpath(VENV):
        return
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", VENV], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", "cryptography==44.0.2", "h2==4.2.0"], check=True)
    os.execv(python, [python, *sys.argv])


from devtools import start_chromium  # noqa: E402
from rewindtest import (Rewind, TestFailure, free_port, http_request_or_fail, https_context, publish as  # noqa: E402
                        publish_text, scratch_directory, stop_process, wait_until)


def make_certificate(directory, name, not_before=None, not_after=None):
    """A self-signed P-256 certificate for 127.0.0.1 and localhost; returns (cert path, key path)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(hours=1))
        .not_valid_after(not_after or now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path = os.path.join(directory, f"{name}.crt")
    key_path = os.path.join(directory, f"{name}.key")
    with open(cert_path, "wb") as file:
        file.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as file:
        file.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()))
    return cert_path, key_path


def server_process(binary, workdir, port, extra, cafile=None):
    """`rewind serve` on `{port}.sqlite` with `extra` flags; with `cafile` it serves HTTPS with that certificate."""
    return Rewind(binary, workdir, port, extra, db=os.path.join(workdir, f"{port}.sqlite"),
                  log_name=f"rewind-{port}.log", host=None,
                  ssl_context=https_context(cafile) if cafile else None)


def curl(args, *, version, cafile, timeout=10):
    """(headers, body, http_version) of one curl request."""
    flag = "--http2" if version == "2" else "--http1.1"
    result = subprocess.run(["curl", "-sS", "-i", "--cacert", cafile, flag, "-w", "\n%{http_version}", *args],
                            capture_output=True, timeout=timeout)
    out = result.stdout.decode(errors="replace")
    out, _, used = out.rpartition("\n")
    if result.returncode not in (0, 28):
        raise TestFailure(f"curl {args} failed ({result.returncode}): {result.stderr.decode(errors='replace')}")
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    return head, body, used.strip()


def check_curl(port, cafile):
    base = f"https://127.0.0.1:{port}"
    for version in ("2", "1.1"):
        stream = f"curl{version.replace('.', '')}"
        head, body, used = curl(["-X", "POST", "-H", "Content-Type: application/x-ndjson", "--data-binary",
                                 '{"data":"one"}\n{"data":"two"}\n{"data":"three"}\n',
                                 f"{base}/v1/streams/{stream}/events"], version=version, cafile=cafile)
        if used != version or len(json.loads(body).get("ids", [])) != 3:
            raise TestFailure(f"publish over HTTP/{version}: got HTTP/{used} {head!r} {body!r}")
        first = json.loads(body)["first_id"]
        head, body, used = curl(["-H", "Accept: application/json", f"{base}/v1/streams/{stream}/events?after={first}"],
                                version=version, cafile=cafile)
        if used != version or [e["data"] for e in json.loads(body)["events"]] != ["two", "three"]:
            raise TestFailure(f"JSON read over HTTP/{version}: got HTTP/{used} {body!r}")
        # Replay after Last-Event-ID 1, then a live event published while the stream is open.
        flag = "--http2" if version == "2" else "--http1.1"
        process = subprocess.Popen(["curl", "-sS", "-N", "-i", "--cacert", cafile, flag, "--max-time", "4",
                                    "-w", "\n%{http_version}", "-H", f"Last-Event-ID: {first}",
                                    f"{base}/v1/streams/{stream}/events"], stdout=subprocess.PIPE,
                                   stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.0)
            curl(["-X", "POST", "-H", "Content-Type: text/plain", "--data-binary", "live",
                  f"{base}/v1/streams/{stream}/events"], version=version, cafile=cafile)
            out, _ = process.communicate(timeout=10)
        finally:
            stop_process(process)
        text = out.decode(errors="replace").replace("\r\n", "\n")
        text, _, used = text.rpartition("\n")
        head, _, body = text.partition("\n\n")
        ids = [int(i) for i in re.findall(r"^id: (\d+)$", body, re.M)]
        data = re.findall(r"^data: (.*)$", body, re.M)
        if used.strip() != version or ids[:2] != [first + 1, first + 2] or data != ["two", "three", "live"]:
            raise TestFailure(f"SSE over HTTP/{version}: got HTTP/{used.strip()}, ids {ids}, data {data}\n{head}")
        if "retry: 300" not in body:
            raise TestFailure(f"SSE over HTTP/{version}: no retry line: {body!r}")
        has_connection = re.search(r"^connection:", head, re.M | re.I) is not None
        if version == "2" and has_connection:
            raise TestFailure(f"an HTTP/2 SSE response carries a Connection header:\n{head}")
        if version == "1.1" and not re.search(r"^connection: close$", head, re.M | re.I):
            raise TestFailure(f"an HTTP/1.1 SSE response lacks Connection: close:\n{head}")
        print(f"  curl HTTP/{version}: publish, JSON read, SSE replay after Last-Event-ID and a live event")


def publish(port, stream, data, cafile=None):
    answer = publish_text(port, stream, data, ssl_context=https_context(cafile) if cafile else None)
    if answer is None or answer[0] != 201:
        raise TestFailure(f"publish to {stream}: {answer}")


def subscribers(port, cafile):
    _, body, _ = http_request_or_fail(port, "GET", "/metrics", ssl_context=https_context(cafile))
    text = body.decode()
    # Open streams are counted by state (live in the window, catching up from the log): their sum is all of them.
    values = re.findall(r"^rewind_subscribers(?:\{[^}]*\})? (\S+)$", text, re.M)
    return sum(float(value) for value in values) if values else None


class H2Client:
    """One HTTP/2 connection (ALPN h2) read by a thread; collects each stream's data."""

    def __init__(self, port, cafile):
        import h2.config
        import h2.connection
        context = https_context(cafile)
        context.set_alpn_protocols(["h2"])
        self.socket = context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=10),
                                          server_hostname="localhost")
        if self.socket.selected_alpn_protocol() != "h2":
            raise TestFailure(f"ALPN chose {self.socket.selected_alpn_protocol()!r}, not h2")
        self.connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.connection.initiate_connection()
        self.lock = threading.Lock()
        self.data = {}
        self.ended = set()
        self.closed = False
        self.flush()
        self.thread = threading.Thread(target=self.read, daemon=True)
        self.thread.start()

    def flush(self):
        self.socket.sendall(self.connection.data_to_send())

    def get(self, path):
        with self.lock:
            stream = self.connection.get_next_available_stream_id()
            self.connection.send_headers(stream, [(":method", "GET"), (":scheme", "https"),
                                                  (":authority", "localhost"), (":path", path)], end_stream=True)
            self.data[stream] = b""
            self.flush()
        return stream

    def reset(self, stream):
        with self.lock:
            self.connection.reset_stream(stream)
            self.flush()

    def read(self):
        import h2.events
        while True:
            try:
                chunk = self.socket.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed = True
                return
            with self.lock:
                for event in self.connection.receive_data(chunk):
                    if isinstance(event, h2.events.DataReceived):
                        self.data[event.stream_id] = self.data.get(event.stream_id, b"") + event.data
                        self.connection.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                        self.ended.add(event.stream_id)
                    elif isinstance(event, h2.events.ConnectionTerminated):
                        self.closed = True
                self.flush()

    def received(self, stream):
        with self.lock:
            return self.data.get(stream, b"").decode(errors="replace")

    def close(self):
        with contextlib.suppress(OSError):
            self.socket.close()


def check_stream_reset(port, cafile):
    client = H2Client(port, cafile)
    try:
        before = subscribers(port, cafile) or 0
        kept = client.get("/v1/streams/reset-kept/events")
        dropped = client.get("/v1/streams/reset-dropped/events")
        wait_until(lambda: "retry:" in client.received(kept) and "retry:" in client.received(dropped), 10,
                   "both subscriptions to start")
        wait_until(lambda: subscribers(port, cafile) == before + 2, 10, "two more subscribers")
        client.reset(dropped)
        wait_until(lambda: subscribers(port, cafile) == before + 1, 10,
                   "the reset stream's subscription to end (subscriber count back by one)")
        publish(port, "reset-dropped", "after reset", cafile)
        publish(port, "reset-kept", "still here", cafile)
        wait_until(lambda: "data: still here" in client.received(kept), 10, "the other stream's event")
        if client.closed or kept in client.ended:
            raise TestFailure("resetting one stream ended the connection or the other stream")
        if "after reset" in client.received(dropped):
            raise TestFailure("the reset stream still received an event")
        print("  HTTP/2 stream reset: that subscription ended, the other stream and the connection went on")
    finally:
        client.close()


def peer_certificate(port):
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=5)) as connection:
        return connection.getpeercert(binary_form=True)


def pem_to_der(path):
    with open(path) as file:
        return ssl.PEM_cert_to_DER_cert(file.read())


def check_reload(server, workdir, live_cert, live_key, cafile):
    port = server.port
    old = pem_to_der(live_cert)
    if peer_certificate(port) != old:
        raise TestFailure("the server does not present --tls-cert")
    process = subprocess.Popen(["curl", "-sS", "-N", "--http2", "--cacert", cafile, "--max-time", "6",
                                f"https://127.0.0.1:{port}/v1/streams/reload/events"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        renewed_cert, renewed_key = make_certificate(workdir, "renewed")
        shutil.copy(renewed_cert, live_cert)
        shutil.copy(renewed_key, live_key)
        server.process.send_signal(signal.SIGHUP)
        wait_until(lambda: peer_certificate(port) == pem_to_der(renewed_cert), 10, "the renewed certificate")
        publish(port, "reload", "after reload", renewed_cert)
        out, _ = process.communicate(timeout=10)
    finally:
        stop_process(process)
    if b"data: after reload" not in out:
        raise TestFailure(f"a stream opened before SIGHUP did not get the event published after: {out!r}")
    with open(live_key, "w") as file:
        file.write("not a key\n")
    server.process.send_signal(signal.SIGHUP)
    time.sleep(1.0)
    if server.process.poll() is not None:
        raise TestFailure("SIGHUP with a broken key file ended the server")
    if peer_certificate(port) != pem_to_der(renewed_cert):
        raise TestFailure("after a failed reload the server no longer presents the certificate in use")
    if "TLS certificate not reloaded" not in server.log_text()[-3000:]:
        raise TestFailure("a failed reload was not logged")
    shutil.copy(renewed_key, live_key)
    print("  SIGHUP: renewed certificate on new connections, open stream kept; a broken key file changes nothing")
    return renewed_cert


def check_bad_inputs(binary, workdir):
    good_cert, good_key = make_certificate(workdir, "good")
    _, other_key = make_certificate(workdir, "other")
    now = datetime.datetime.now(datetime.timezone.utc)
    expired_cert, expired_key = make_certificate(workdir, "expired", not_before=now - datetime.timedelta(days=3),
                                                 not_after=now - datetime.timedelta(days=1))
    future_cert, future_key = make_certificate(workdir, "future", not_before=now + datetime.timedelta(days=1))
    missing = os.path.join(workdir, "missing.pem")
    cases = [
        (missing, good_key, missing, "no such file"),
        (good_cert, missing, missing, "no such file"),
        (good_key, good_key, good_key, "not a PEM certificate"),
        (good_cert, good_cert, good_cert, "not a PEM private key"),
        (good_cert, other_key, other_key, "does not match"),
        (expired_cert, expired_key, expired_cert, "expired"),
        (future_cert, future_key, future_cert, "not valid before"),
    ]
    for cert, key, named, problem in cases:
        result = subprocess.run([binary, "serve", "--port", str(free_port()), "--db",
                                 os.path.join(workdir, "bad.sqlite"), "--tls-cert", cert, "--tls-key", key],
                                capture_output=True, timeout=30)
        lines = result.stderr.decode().strip().splitlines()
        if result.returncode != 1 or len(lines) != 1 or named not in lines[0] or problem not in lines[0]:
            raise TestFailure(f"--tls-cert {cert} --tls-key {key}: exit {result.returncode}, stderr {lines}; "
                              f"expected exit 1 and one line naming {named} and '{problem}'")
    print(f"  bad certificate inputs: {len(cases)} cases exit 1 with one line naming the file and the problem")


PAGE_SCRIPT = """
(() => {
  window.got = {};
  window.opened = 0;
  window.sources = [];
  for (let i = 0; i < %d; i++) {
    const source = new EventSource('/v1/streams/tab' + i + '/events');
    source.onopen = () => { window.opened++; };
    source.onmessage = (event) => { window.got['tab' + i] = event.data; };
    window.sources.push(source);
  }
  return true;
})()
"""


def check_browser(binary, workdir, stack, scheme, cert, key, streams=10):
    port = free_port()
    extra = ["--tls-cert", cert, "--tls-key", key] if scheme == "https" else []
    server = server_process(binary, workdir, port, extra, cert if scheme == "https" else None)
    stack.callback(server.stop)
    server.start()
    devtools = start_chromium(workdir, stack)
    # The certificate is self-signed; the test is about the protocol, not the trust store.
    devtools.call("Security.setIgnoreCertificateErrors", ignore=True)
    devtools.call("Page.navigate", url=f"{scheme}://127.0.0.1:{port}/healthz")
    wait_until(lambda: devtools.evaluate("document.readyState") == "complete", 30, "the page to load")
    devtools.evaluate(PAGE_SCRIPT % streams)
    time.sleep(1.0)
    started = time.monotonic()
    for i in range(streams):
        publish(port, f"tab{i}", f"event for tab{i}", cert if scheme == "https" else None)
    deadline = started + 10
    got = {}
    while time.monotonic() < deadline:
        got = devtools.evaluate("window.got") or {}
        if len(got) == streams:
            break
        time.sleep(0.2)
    protocol = devtools.evaluate(
        "performance.getEntriesByType('navigation').map(e => e.nextHopProtocol)[0] || ''")
    missing = sorted(set(f"tab{i}" for i in range(streams)) - set(got), key=lambda name: int(name[3:]))
    if missing:
        raise TestFailure(f"over {scheme} ({protocol}), {len(missing)} of {streams} EventSources received nothing "
                          f"within 10 s: {', '.join(missing)} (opened: {devtools.evaluate('window.opened')})")
    print(f"  Chromium over {scheme} ({protocol}): {streams} EventSources on one origin, each got its event "
          f"within {time.monotonic() - started:.1f} s")


def run(args, workdir, stack):
    binary = os.path.join(workdir, "rewind")
    shutil.copy2(args.binary, binary)
    if args.plain_http:
        check_browser(binary, workdir, stack, "http", None, None)
        return
    cert, key = make_certificate(workdir, "localhost")
    live_cert = os.path.join(workdir, "live.crt")
    live_key = os.path.join(workdir, "live.key")
    shutil.copy(cert, live_cert)
    shutil.copy(key, live_key)
    server = server_process(binary, workdir, free_port(), ["--tls-cert", live_cert, "--tls-key", live_key], cert)
    stack.callback(server.stop)
    server.start()
    check_curl(server.port, cert)
    check_stream_reset(server.port, cert)
    renewed = check_reload(server, workdir, live_cert, live_key, cert)
    check_curl_after = curl(["-H", "Accept: application/json", f"https://127.0.0.1:{server.port}/v1/streams"],
                            version="2", cafile=renewed)
    if check_curl_after[2] != "2":
        raise TestFailure("after the reload, HTTP/2 with the renewed certificate failed")
    server.stop()
    check_bad_inputs(binary, workdir)
    if not args.no_browser:
        check_browser(binary, workdir, stack, "https", cert, key)


def main():
    ensure_venv()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--binary", required=True, help="the rewind executable to test (copied first)")
    parser.add_argument("--plain-http", action="store_true",
                        help="only the Chromium check, over plain HTTP/1.1 (expected to fail: six connections)")
    parser.add_argument("--no-browser", action="store_true", help="leave out the Chromium check")
    args = parser.parse_args()
    with scratch_directory("tls") as workdir, contextlib.ExitStack() as stack:
        run(args, workdir, stack)
    print("tls test passed")


if __name__ == "__main__":
    main()
