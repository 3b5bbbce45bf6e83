"""The standalone exporter: /metrics over the standard library's HTTP server, for hosts
that run no web viewer. Unprivileged: it reads the store read-only, as a member of its group.

It answers GET /metrics (the exposition text) and GET / (a line saying where the metrics
are); with a token configured, both want `Authorization: Bearer TOKEN`, as the JSON API does.
"""

from __future__ import annotations

import logging
import socket
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

from netwarden.bearer import token_matches
from netwarden.metrics.counting import StoreCounter
from netwarden.metrics.exposition import CONTENT_TYPE
from netwarden.metrics.scrape import scrape
from netwarden.serving import serve_until_interrupted

log = logging.getLogger(__name__)


class BindError(OSError):
    """The address cannot be listened on (in use, not ours, bad name)."""


@dataclass(frozen=True)
class ExporterSettings:
    db_path: Path
    token: str = ""
    top_n: int = 20


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], settings: ExporterSettings) -> None:
        # An IPv6 address needs an IPv6 socket; the base class would make an IPv4 one.
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        self.settings = settings
        self.counter = StoreCounter(settings.top_n)
        super().__init__(address, _Handler)
        # Read the store once now: counting starts when the exporter starts, not at the
        # first scrape (a store not readable yet starts counting when it first is).
        scrape(self.counter, settings.db_path)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "netwarden-metrics"
    timeout = 30      # seconds a client may take to send its request (a stuck one is dropped)

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        path = urlsplit(self.path).path
        if path not in ("/", "/metrics"):
            self._answer(404, "text/plain; charset=utf-8", "not found: try /metrics\n")
            return
        if not token_matches(self.server.settings.token,
                             self.headers.get("Authorization"), None):
            self._answer(401, "text/plain; charset=utf-8",
                         "a bearer token is required (Authorization: Bearer TOKEN)\n",
                         {"WWW-Authenticate": 'Bearer realm="netwarden"'})
            return
        if path == "/":
            self._answer(200, "text/plain; charset=utf-8",
                         "netwarden metrics exporter: the metrics are at /metrics\n")
            return
        text = scrape(self.server.counter, self.server.settings.db_path)
        self._answer(200, CONTENT_TYPE, text)

    def _answer(self, status: int, content_type: str, body: str,
                headers: dict[str, str] | None = None) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - base's name
        log.debug("%s %s", self.address_string(), format % args)


def make_server(settings: ExporterSettings, host: str, port: int) -> _Server:
    """A bound server (port 0: any free one; `server.server_address` says which)."""
    try:
        return _Server((host, port), settings)
    except OSError as exc:
        detail = exc.strerror or str(exc)
        shown = f"[{host}]" if ":" in host else host
        raise BindError(f"cannot listen on {shown}:{port}: {detail}") from None


def serve(server: _Server, label: str) -> None:
    """Serve until interrupted."""
    host, port = server.server_address[:2]
    shown = f"[{host}]" if ":" in str(host) else host
    serve_until_interrupted(server, f"netwarden metrics: serving http://{shown}:{port}/metrics "
                                    f"(reading {label}; Ctrl-C stops)")
