"""The ports this host listens on, for the baseline's new_listen_port (model/baseline.py).

Read from /proc/net/{tcp,tcp6,udp,udp6} once a write window: a few hundred lines on a busy
host, no packet capture and no BPF hook (the sensor has none on listen()). A TCP socket in
LISTEN counts, and a bound UDP socket with no peer, unless its port is in the ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range): that is a client's socket waiting for answers. Only
a port not seen in the previous read is attributed to a program, by finding the socket's
inode among /proc/PID/fd, so the scan of every process's descriptors runs only when
something new listens. Sockets of other network namespaces are not seen (they are another
host's ports, as far as this one's services go).
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import NamedTuple

from netwarden.model.baseline import ListeningPort

_TCP_LISTEN = "0A"
_UDP_UNCONNECTED = "07"
_TABLES = (("tcp", "tcp", 4), ("tcp6", "tcp", 6), ("udp", "udp", 4), ("udp6", "udp", 6))


class ListenSocket(NamedTuple):
    protocol: str
    port: int
    address: str
    inode: int


def _address(hex_address: str, version: int) -> str:
    raw = bytes.fromhex(hex_address)
    # The kernel prints each 32-bit word in host (little-endian) order.
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words) if version == 6 else ipaddress.IPv4Address(words)
    return str(address)


def parse_table(text: str, protocol: str, version: int) -> list[ListenSocket]:
    """The listening sockets in one /proc/net table's text."""
    found = []
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10:
            continue
        local, remote, state = parts[1], parts[2], parts[3]
        wanted = _TCP_LISTEN if protocol == "tcp" else _UDP_UNCONNECTED
        if state != wanted or (protocol == "udp" and not remote.endswith(":0000")):
            continue
        address, _, port = local.partition(":")
        found.append(ListenSocket(protocol, int(port, 16), _address(address, version),
                                  int(parts[9])))
    return found


def ephemeral_range(proc_root: Path) -> range:
    try:
        low, high = (proc_root / "sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)   # the kernel's default


def read_listening(proc_root: Path) -> list[ListenSocket]:
    ephemeral = ephemeral_range(proc_root)
    sockets = []
    for table, protocol, version in _TABLES:
        try:
            text = (proc_root / "net" / table).read_text()
        except OSError:
            continue    # no IPv6 on this host
        sockets += [s for s in parse_table(text, protocol, version)
                    if protocol == "tcp" or s.port not in ephemeral]
    return sockets


def socket_owners(proc_root: Path, inodes: set[int]) -> dict[int, tuple[str, str]]:
    """inode -> (executable path, process name) of a process holding that socket."""
    wanted = {f"socket:[{inode}]": inode for inode in inodes}
    owners: dict[int, tuple[str, str]] = {}
    for pid in (p for p in os.listdir(proc_root) if p.isdigit()):
        fd_dir = proc_root / pid / "fd"
        try:
            links = [os.readlink(fd_dir / fd) for fd in os.listdir(fd_dir)]
            hits = [wanted[link] for link in links if link in wanted]
            if not hits:
                continue
            path = os.readlink(proc_root / pid / "exe")
            name = (proc_root / pid / "comm").read_text().strip()
        except OSError:
            continue    # gone, or a kernel thread
        for inode in hits:
            owners.setdefault(inode, (path, name))
        if len(owners) == len(inodes):
            break
    return owners


class ListenWatch:
    """The current listening ports, each with the program found when it first appeared."""

    def __init__(self, proc_root: str | Path = "/proc") -> None:
        self._root = Path(proc_root)
        self._ports: dict[tuple[str, int, str], ListeningPort] = {}

    def scan(self) -> list[ListeningPort]:
        sockets = read_listening(self._root)
        new = [s for s in sockets if (s.protocol, s.port, s.address) not in self._ports]
        owners = socket_owners(self._root, {s.inode for s in new}) if new else {}
        ports = {}
        for s in sockets:
            key = (s.protocol, s.port, s.address)
            known = self._ports.get(key)
            if known is None:
                path, name = owners.get(s.inode, ("", ""))
                known = ListeningPort(s.protocol, s.port, s.address, path, name)
            ports[key] = known
        self._ports = ports
        return list(ports.values())
