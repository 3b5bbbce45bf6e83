"""A test LAN for discovery: a bridge in its own namespace, hosts as namespaces on it.

Nothing of it lives in the VM's own network namespace: the bridge sits in a "switch"
namespace, every veth is created directly inside the namespaces it joins, and no namespace has
a route off the 10.78.x.x / fd78::/16 link. Names start with the discovery prefix ``nwd-``;
leftovers of a crashed run (namespaces and the processes inside them) are removed first.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "nwd-"
REPO = Path(__file__).resolve().parent.parent.parent


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done


def our_namespaces(prefix: str) -> list[str]:
    names = run("ip", "netns", "list").stdout.split("\n")
    return [line.split()[0] for line in names if line.startswith(prefix)]


def remove_namespace(name: str) -> None:
    """Kill the processes inside (all started by these tests), then delete it."""
    pids = run("ip", "netns", "pids", name, check=False).stdout.split()
    for pid in pids:
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass
    run("ip", "netns", "del", name, check=False)


@dataclass(frozen=True)
class LanHost:
    ns: str
    ifname: str
    mac: str
    v4: str            # address without prefix
    v6: str = ""

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.ns]


@dataclass
class Lan:
    """``Lan("nwd-", "10.78.0")``: switch ``nwd-sw``, bridge ``nwd-br0``, hosts on /24."""

    prefix: str
    v4_prefix: str                  # "10.78.0": hosts get v4_prefix.N/24
    v6_prefix: str = "fd78::"       # hosts get fd78::N/64
    hosts: dict[str, LanHost] = field(default_factory=dict)
    procs: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"{self.prefix}sw"

    @property
    def bridge(self) -> str:
        return f"{self.prefix}br0"

    def create(self) -> None:
        self.delete_leftovers()
        run("ip", "netns", "add", self.switch)
        sw = ["ip", "netns", "exec", self.switch]
        # The switch is not a host: no IPv6 link-local address that would answer echoes.
        run(*sw, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
            "net.ipv6.conf.default.disable_ipv6=1")
        run(*sw, "ip", "link", "add", self.bridge, "type", "bridge", "mcast_snooping", "0")
        run(*sw, "ip", "link", "set", self.bridge, "up")
        run(*sw, "ip", "link", "set", "lo", "up")

    def delete_leftovers(self) -> None:
        for name in our_namespaces(self.prefix):
            remove_namespace(name)

    def add_host(self, key: str, mac: str, last_octet: int, with_v6: bool = True) -> LanHost:
        """A namespace ``<prefix><key>`` with interface ``<prefix><key>e`` on the bridge."""
        ns, ifname, port = f"{self.prefix}{key}", f"{self.prefix}{key}e", f"{self.prefix}{key}p"
        if len(ifname) > 15 or len(port) > 15:
            raise ValueError(f"interface name too long for {key!r}")
        host = LanHost(ns, ifname, mac, f"{self.v4_prefix}.{last_octet}",
                       f"{self.v6_prefix}{last_octet:x}" if with_v6 else "")
        run("ip", "netns", "add", ns)
        run("ip", "link", "add", ifname, "netns", ns, "address", mac, "type", "veth",
            "peer", "name", port, "netns", self.switch)
        sw = ["ip", "netns", "exec", self.switch]
        run(*sw, "ip", "link", "set", port, "master", self.bridge)
        run(*sw, "ip", "link", "set", port, "up")
        inside = host.exec_prefix()
        run(*inside, "ip", "link", "set", "lo", "up")
        run(*inside, "ip", "addr", "add", f"{host.v4}/24", "dev", ifname)
        if host.v6:
            run(*inside, "ip", "-6", "addr", "add", f"{host.v6}/64", "dev", ifname, "nodad")
        run(*inside, "ip", "link", "set", ifname, "up")
        self.hosts[key] = host
        return host

    def set_link(self, key: str, up: bool) -> None:
        host = self.hosts[key]
        run(*host.exec_prefix(), "ip", "link", "set", host.ifname, "up" if up else "down")

    def start(self, key: str, argv: list[str], ready: str = "ready",
              timeout: float = 20) -> subprocess.Popen[str]:
        """Run ``argv`` inside a host; wait until it prints ``ready``."""
        env = dict(os.environ, PYTHONPATH=str(REPO))
        proc = subprocess.Popen(self.hosts[key].exec_prefix() + argv, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env)
        self.procs.append(proc)
        assert proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if line.strip() == ready:
                return proc
            if not line and proc.poll() is not None:
                break
        proc.kill()
        err = proc.stderr.read() if proc.stderr else ""
        raise RuntimeError(f"{argv} in {key} did not become ready: {err}")

    def start_host_services(self, key: str, *options: str) -> subprocess.Popen[str]:
        return self.start(key, [sys.executable, "-m", "tests.support.lan_host", *options])

    def delete(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self.procs.clear()
        for name in [h.ns for h in self.hosts.values()] + [self.switch]:
            remove_namespace(name)
        self.hosts.clear()
