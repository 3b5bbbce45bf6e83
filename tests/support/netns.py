"""A test LAN: network namespaces joined to the host by veth pairs.

Traffic from tests goes only to loopback or to these namespaces. Several test sessions may run
on one machine at once (CI runs one; developers run several): every name carries a
session token, and each session takes IPv4/IPv6 subnets no address or route on the machine
uses yet, allocated under a lock. Namespaces are deleted at the end of the session.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import subprocess
from dataclasses import dataclass

SESSION = f"{os.getpid() % 0xFFFF:04x}"
_LOCK_PATH = "/run/lock/netwarden-tests.lock"
_SECOND_OCTETS = range(100, 250)


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, check=check, capture_output=True, text=True)


@dataclass(frozen=True)
class PeerNamespace:
    """One namespace with a veth to the host. Addresses: host .1 / ::1, peer .2 / ::2."""

    name: str
    host_if: str
    peer_if: str
    host_v4: str
    peer_v4: str
    host_v6: str
    peer_v6: str

    def exec_prefix(self) -> list[str]:
        return ["ip", "netns", "exec", self.name]

    def create(self) -> None:
        self.delete()
        run("ip", "netns", "add", self.name)
        run("ip", "link", "add", self.host_if, "type", "veth", "peer", "name", self.peer_if)
        run("ip", "link", "set", self.peer_if, "netns", self.name)
        run("ip", "addr", "add", f"{self.host_v4}/24", "dev", self.host_if)
        run("ip", "-6", "addr", "add", f"{self.host_v6}/64", "dev", self.host_if, "nodad")
        run("ip", "link", "set", self.host_if, "up")
        ns = self.exec_prefix()
        run(*ns, "ip", "addr", "add", f"{self.peer_v4}/24", "dev", self.peer_if)
        run(*ns, "ip", "-6", "addr", "add", f"{self.peer_v6}/64", "dev", self.peer_if, "nodad")
        run(*ns, "ip", "link", "set", self.peer_if, "up")
        run(*ns, "ip", "link", "set", "lo", "up")

    def delete(self) -> None:
        run("ip", "link", "del", self.host_if, check=False)
        run("ip", "netns", "del", self.name, check=False)

    def inode(self) -> int:
        return os.stat(f"/run/netns/{self.name}").st_ino

    def host_address(self, last_octet: int) -> str:
        """Another address in the host side's /24 (add it with `ip addr add` to use it)."""
        return str(ipaddress.IPv4Address(self.host_v4) + (last_octet - 1))


def _used_networks() -> list[ipaddress.IPv4Network]:
    used = []
    for line in run("ip", "-o", "-4", "addr", "show").stdout.splitlines():
        used.append(ipaddress.ip_interface(line.split()[3]).network)
    for line in run("ip", "-4", "route", "show").stdout.splitlines():
        first = line.split()[0]
        if first != "default":
            used.append(ipaddress.ip_network(first, strict=False))
    return used


_octet: int | None = None


def _session_octet() -> int:
    """The second octet of this session's test LANs (10.X.index.0/24); call under the lock."""
    global _octet
    if _octet is None:
        used = _used_networks()
        for octet in _SECOND_OCTETS:
            block = ipaddress.ip_network(f"10.{octet}.0.0/16")
            if not any(block.overlaps(net) for net in used):
                _octet = octet
                break
        else:
            raise RuntimeError("no free 10.X.0.0/16 for test networks")
    return _octet


def default_peer(index: int = 0) -> PeerNamespace:
    """Test LAN ``index`` of this session, created (delete() it when done). The subnet is
    chosen and its first address added under one lock, so concurrent sessions differ."""
    with open(_LOCK_PATH, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        octet = _session_octet()
        peer = PeerNamespace(
            name=f"nwtest{index}-{SESSION}", host_if=f"nw{index}{SESSION}h",
            peer_if=f"nw{index}{SESSION}p",
            host_v4=f"10.{octet}.{index}.1", peer_v4=f"10.{octet}.{index}.2",
            host_v6=str(ipaddress.IPv6Address(f"fd77:{octet:x}:{index}::1")),
            peer_v6=str(ipaddress.IPv6Address(f"fd77:{octet:x}:{index}::2")))
        peer.create()
    return peer
