"""A local HTTP server for tests: records each request and answers from a script.

It listens on loopback in this engineer's port range (5400-5499); ``responses`` is a list of
statuses (or (status, body) pairs) served in order, the last one repeating; ``delay_s`` makes
it slow.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORTS = range(5410, 5500)


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    time: float

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Script:
    responses: list[object] = field(default_factory=lambda: [200])
    delay_s: float = 0.0
    handler: object = None     # callable(Recorded) -> (status, body) | None


def free_port(ports: range = PORTS) -> int:
    for port in ports:
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {ports}")


class Recorder:
    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                record = Recorded(self.command, self.path, dict(self.headers.items()), body,
                                  time.time())
                status, payload = recorder._answer(record)
                if recorder.script.delay_s:
                    time.sleep(recorder.script.delay_s)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _handle

            def log_message(self, *args: object) -> None:
                pass

        for _ in range(5):
            try:
                self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
                break
            except OSError:  # another test took the port between probe and bind
                continue
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def _answer(self, record: Recorded) -> tuple[int, object]:
        with self._lock:
            self.requests.append(record)
            if self.script.handler is not None:
                return self.script.handler(record)  # type: ignore[operator]
            index = min(len(self.requests) - 1, len(self.script.responses) - 1)
            answer = self.script.responses[index]
        if isinstance(answer, tuple):
            return answer  # type: ignore[return-value]
        return int(answer), {}  # type: ignore[call-overload]

    def wait_for(self, count: int, timeout: float = 10) -> list[Recorded]:
        deadline = time.time() + timeout
        while time.time() < deadline and len(self.requests) < count:
            time.sleep(0.02)
        return list(self.requests)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
