"""A test LAN: network namespaces joined to the host by veth pairs.

Traffic from tests goes only to loopback or to these namespaces. Each namespace is created by
the test session and deleted at its end (and stale ones from a crashed run are removed first).
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass


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
        import os
        return os.stat(f"/run/netns/{self.name}").st_ino


def default_peer(index: int = 0) -> PeerNamespace:
    return PeerNamespace(
        name=f"nwtest{index}", host_if=f"nwt{index}h", peer_if=f"nwt{index}p",
        host_v4=f"10.77.{index}.1", peer_v4=f"10.77.{index}.2",
        host_v6=f"fd77:{index + 1}::1", peer_v6=f"fd77:{index + 1}::2")
