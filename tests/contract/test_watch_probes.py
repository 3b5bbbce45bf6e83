"""Each probe against real servers on loopback: what it says when the target answers, and the
reason it gives when not. As root (the suite's user) ICMP goes through a raw socket where
ping sockets are not allowed (ping_group_range "1 0"); tests/privileged/test_watch.py runs
the ping-socket path as nobody."""

from __future__ import annotations

import http.server
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwarden.discovery.probes import run_probe
from netwarden.model.watch import ProbeResult, WatchTarget, parse_probe
from tests.support.http_recorder import free_port

REPO = Path(__file__).resolve().parents[2]


def probe(text: str, timeout: float = 2.0, **kw: object) -> ProbeResult:
    return run_probe(WatchTarget("t", parse_probe(text), 10.0, timeout, **kw))  # type: ignore[arg-type]


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def https_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """An HTTPS server on 127.0.0.1 with a self-signed certificate (no CA vouches for it)."""
    directory = tmp_path_factory.mktemp("tls")
    key, cert = directory / "key.pem", directory / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def http_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


@pytest.fixture(scope="module")
def dns_port() -> Iterator[int]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-u", "-m", "tests.support.dns_server",
                             "127.0.0.1", str(port), "here.test=A:192.0.2.7"],
                            stdout=subprocess.PIPE, text=True, cwd=REPO)
    assert proc.stdout is not None and "ready" in proc.stdout.readline()
    yield port
    proc.terminate()
    proc.wait()


def test_icmp():
    result = probe("icmp:127.0.0.1")
    assert result.ok and 0 < (result.latency_s or 0) < 2, result.reason
    assert probe("icmp:no-such-host.invalid").reason.startswith("cannot resolve")


def test_tcp():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    assert probe(f"tcp:127.0.0.1:{port}").ok
    listener.close()
    assert probe(f"tcp:127.0.0.1:{port}").reason == "Connection refused"


def test_http_status(http_port: int):
    assert probe(f"http://127.0.0.1:{http_port}/health").ok
    missing = probe(f"http://127.0.0.1:{http_port}/nope")
    assert missing.reason == "HTTP status 404, expected 200"
    assert probe(f"http://127.0.0.1:{http_port}/nope", expect_status=404).ok


def test_https_verifies_the_certificate_unless_told_not_to(https_port: int):
    url = f"https://127.0.0.1:{https_port}/health"
    refused = probe(url)
    assert not refused.ok and refused.reason == "TLS: CERTIFICATE_VERIFY_FAILED"
    assert probe(url, verify_tls=False).ok


def test_dns(dns_port: int):
    assert probe(f"dns:here.test@127.0.0.1:{dns_port}").ok
    assert probe(f"dns:gone.test@127.0.0.1:{dns_port}").reason == "DNS NXDOMAIN for gone.test"
    quiet = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)    # bound, never answers
    quiet.bind(("127.0.0.1", 0))
    silent = probe(f"dns:here.test@127.0.0.1:{quiet.getsockname()[1]}", timeout=0.3)
    assert silent.reason == "timed out"
    quiet.close()
