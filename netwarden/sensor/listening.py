"""The ports this host listens on, for the baseline's new_listen_port (model/baseline.py).

Asked of the kernel once a write window with a sock_diag netlink dump filtered to the
listening states (about 0.3 ms here), no packet capture and no BPF hook (the sensor has none
on listen()). /proc/net/{tcp,tcp6,udp,udp6} say the same but cost the kernel a walk of every
connection's hash bucket: 17 ms per TCP table on this 2-core VM with 170 sockets, so they are
only the fallback (a kernel without tcp_diag/udp_diag). A TCP socket in LISTEN counts, and a
bound UDP socket with no peer, unless its port is in the ephemeral range
(/proc/sys/net/ipv4/ip_local_port_range): that is a client's socket waiting for answers. Only
a port not seen in the previous read is attributed to a program, by finding the socket's
inode among /proc/PID/fd, so the scan of every process's descriptors runs only when
something new listens. Sockets of other network namespaces are not seen (they are another
host's ports, as far as this one's services go).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
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


_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST_DUMP = 0x301
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_TCP_LISTEN_STATE, _TCP_CLOSE_STATE = 10, 7
_HEADER = struct.Struct("=IHHII")            # nlmsghdr
_REQUEST = struct.Struct("=BBBBI48x")        # inet_diag_req_v2, an all-zero inet_diag_sockid


def _diag_dump(family: int, protocol: int, state: int) -> list[ListenSocket]:
    """One sock_diag dump: the sockets of ``family``/``protocol`` in ``state``."""
    name = "tcp" if protocol == socket.IPPROTO_TCP else "udp"
    request = _REQUEST.pack(family, protocol, 0, 0, 1 << state)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as nl:
        nl.sendto(_HEADER.pack(_HEADER.size + len(request), _SOCK_DIAG_BY_FAMILY,
                               _NLM_F_REQUEST_DUMP, 1, 0) + request, (0, 0))
        found: list[ListenSocket] = []
        while True:
            data = nl.recv(65536)
            offset = 0
            while offset < len(data):
                length, kind = _HEADER.unpack_from(data, offset)[:2]
                if kind == _NLMSG_DONE:
                    return found
                if kind == _NLMSG_ERROR:
                    (errno,) = struct.unpack_from("=i", data, offset + _HEADER.size)
                    raise OSError(-errno, f"sock_diag {name}: {os.strerror(-errno)}")
                found.append(_diag_socket(data, offset + _HEADER.size, name))
                offset += (length + 3) & ~3


def _diag_socket(data: bytes, at: int, protocol: str) -> ListenSocket:
    """An inet_diag_msg: family, state, timer, retrans; the sockid (ports big-endian,
    addresses as 16 bytes); expires, rqueue, wqueue, uid, inode."""
    family = data[at]
    (port,) = struct.unpack_from(">H", data, at + 4)
    raw = data[at + 8:at + 24]
    address = ipaddress.IPv4Address(raw[:4]) if family == socket.AF_INET else \
        ipaddress.IPv6Address(raw)
    (inode,) = struct.unpack_from("=I", data, at + 68)
    return ListenSocket(protocol, port, str(address), inode)


def diag_listening() -> list[ListenSocket]:
    """Listening TCP and unconnected UDP sockets by sock_diag; OSError if it is missing."""
    sockets = []
    for family in (socket.AF_INET, socket.AF_INET6):
        sockets += _diag_dump(family, socket.IPPROTO_TCP, _TCP_LISTEN_STATE)
        sockets += _diag_dump(family, socket.IPPROTO_UDP, _TCP_CLOSE_STATE)
    return sockets


def read_listening(proc_root: Path, use_diag: bool = True) -> list[ListenSocket]:
    """This network namespace's listening sockets: by sock_diag when ``use_diag`` and the
    kernel has it, else from ``proc_root``/net (the fixture trees of the tests)."""
    ephemeral = ephemeral_range(proc_root)
    if use_diag:
        try:
            return [s for s in diag_listening()
                    if s.protocol == "tcp" or s.port not in ephemeral]
        except OSError:
            pass
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

    def __init__(self, proc_root: str | Path = "/proc", use_diag: bool = True) -> None:
        self._root = Path(proc_root)
        self._use_diag = use_diag
        self._ports: dict[tuple[str, int, str], ListeningPort] = {}

    def scan(self) -> list[ListeningPort]:
        sockets = read_listening(self._root, self._use_diag)
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
