"""Two network namespaces joined by one veth, for the connectivity watch's tests: a client
(where the watch runs) and a server (an HTTP server, a TCP listener, a DNS server; the
namespace itself answers pings). Neither has an interface in the host's namespace, so their
addresses (192.0.2.0/24, TEST-NET-1) clash with nothing and sysctls set in them (the
client's ping_group_range) change nothing outside.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.netns import SESSION, run
from tests.support.processes import stop_process

REPO = Path(__file__).resolve().parent.parent.parent
CLIENT_IP, SERVER_IP = "192.0.2.1", "192.0.2.2"
HTTP_PORT, TCP_PORT, DNS_PORT = 8080, 2222, 53

#: A TCP listener that accepts and closes, until killed.
_TCP_LISTENER = """
import socket, sys
s = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    s.accept()[0].close()
"""


@dataclass
class WatchNet:
    client: str = f"nwwc-{SESSION}"
    server: str = f"nwws-{SESSION}"
    services: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def in_client(self) -> list[str]:
        return ["ip", "netns", "exec", self.client]

    def in_server(self) -> list[str]:
        return ["ip", "netns", "exec", self.server]

    def create(self) -> None:
        self.delete()
        run("ip", "netns", "add", self.client)
        run("ip", "netns", "add", self.server)
        c_if, s_if = f"nwwc{SESSION}", f"nwws{SESSION}"
        run(*self.in_client(), "ip", "link", "add", c_if, "type", "veth", "peer", "name", s_if,
            "netns", self.server)
        for prefix, ifname, ip in ((self.in_client(), c_if, CLIENT_IP),
                                   (self.in_server(), s_if, SERVER_IP)):
            run(*prefix, "ip", "addr", "add", f"{ip}/24", "dev", ifname)
            run(*prefix, "ip", "link", "set", ifname, "up")
            run(*prefix, "ip", "link", "set", "lo", "up")

    def delete(self) -> None:
        for name in list(self.services):
            self.stop(name)
        run("ip", "netns", "del", self.client, check=False)
        run("ip", "netns", "del", self.server, check=False)

    def _start(self, name: str, argv: list[str], ready: str) -> None:
        proc = subprocess.Popen([*self.in_server(), *argv], stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, cwd=REPO)
        self.services[name] = proc
        deadline = time.monotonic() + 15
        assert proc.stdout is not None
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if ready in line:
                return
            if not line and proc.poll() is not None:
                break
        raise AssertionError(f"{name} did not start: {proc.poll()}")

    def start(self, name: str) -> None:
        """Start one service: http, tcp or dns."""
        python = [sys.executable, "-u"]
        if name == "http":
            self._start(name, [*python, "-m", "http.server", str(HTTP_PORT), "--bind",
                               SERVER_IP, "--directory", str(REPO / "docs")], "Serving HTTP")
        elif name == "tcp":
            self._start(name, [*python, "-c", _TCP_LISTENER, SERVER_IP, str(TCP_PORT)],
                        "ready")
        else:
            self._start(name, [*python, "-m", "tests.support.dns_server", SERVER_IP,
                               str(DNS_PORT), f"watch.test=A:{SERVER_IP}"], "ready")

    def stop(self, name: str) -> None:
        stop_process(self.services.pop(name), timeout=5)

    def ignore_pings(self, ignore: bool) -> None:
        run(*self.in_server(), "sysctl", "-q",
            f"net.ipv4.icmp_echo_ignore_all={int(ignore)}")
