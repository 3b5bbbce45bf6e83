"""ICMP echo sweep of the IPv4 subnets, plus one IPv6 echo to all nodes on the link (ff02::1).

Unprivileged ping sockets (``SOCK_DGRAM``/``IPPROTO_ICMP``) are used where
``net.ipv4.ping_group_range`` admits our group; otherwise a raw socket, which needs
CAP_NET_RAW. Echo replies carry no MAC: the inventory takes it from the neighbour table,
which the kernel fills while it resolves each probed address.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from netwarden.discovery.backend import MethodOutput
from netwarden.discovery.errors import MethodUnavailable
from netwarden.discovery.sweep import paced_sweep, queued_datagrams
from netwarden.model.discovery import ScanTarget, Sighting

ECHO_REQUEST, ECHO_REPLY = 8, 0
ECHO6_REQUEST, ECHO6_REPLY = 128, 129
_PAYLOAD = b"netwarden-discovery"


def checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, v6: bool = False) -> bytes:
    kind = ECHO6_REQUEST if v6 else ECHO_REQUEST
    header = struct.pack("!BBHHH", kind, 0, 0, ident, seq)
    if v6:   # the kernel fills in the ICMPv6 checksum (it covers a pseudo-header)
        return header + _PAYLOAD
    return struct.pack("!BBHHH", kind, 0, checksum(header + _PAYLOAD), ident, seq) + _PAYLOAD


def is_echo_reply(packet: bytes, raw_ipv4: bool, ident: int | None, v6: bool = False) -> bool:
    """Whether ``packet`` (as read from the socket) is a reply to our echo."""
    if raw_ipv4:
        if len(packet) < 20:
            return False
        packet = packet[(packet[0] & 0x0F) * 4:]
    if len(packet) < 8:
        return False
    kind, _code, _sum, reply_id, _seq = struct.unpack_from("!BBHHH", packet)
    if kind != (ECHO6_REPLY if v6 else ECHO_REPLY):
        return False
    # Ping sockets rewrite the id and deliver only our replies; raw sockets see all.
    return ident is None or reply_id == ident


def ping_group_range(proc_root: Path) -> str:
    try:
        return (proc_root / "sys/net/ipv4/ping_group_range").read_text().split("\n")[0] \
            .replace("\t", " ")
    except OSError:
        return "unknown"


def open_echo_socket(family: int, proc_root: Path) -> tuple[socket.socket, bool]:
    """A ping socket if allowed, else a raw one; (socket, is_raw)."""
    proto = socket.IPPROTO_ICMP if family == socket.AF_INET else socket.IPPROTO_ICMPV6
    try:
        return socket.socket(family, socket.SOCK_DGRAM, proto), False
    except PermissionError:
        pass
    try:
        return socket.socket(family, socket.SOCK_RAW, proto), True
    except PermissionError:
        raise MethodUnavailable(
            f"ping sockets are not allowed for group {os.getgid()} (net.ipv4.ping_group_range "
            f"= {ping_group_range(proc_root)}) and a raw ICMP socket needs CAP_NET_RAW") \
            from None


class IcmpSweep:
    name = "icmp"
    phase = 1

    def __init__(self, rate: float, wait_s: float, proc_root: Path = Path("/proc"),
                 clock: Callable[[], float] = time.time) -> None:
        self.rate = rate
        self.wait_s = wait_s
        self.proc_root = proc_root
        self.clock = clock

    def discover(self, target: ScanTarget, hosts: Sequence[str]) -> MethodOutput:
        found: dict[str, Sighting] = {}
        sent = self._sweep_v4(target, found)
        answered_v4 = len(found)
        v6_note = self._all_nodes_v6(target, found)
        return MethodOutput(found.values(), f"{sent} IPv4 echoes, {answered_v4} replies; "
                                            f"IPv6 all-nodes: {v6_note}")

    def _sweep_v4(self, target: ScanTarget, found: dict[str, Sighting]) -> int:
        addresses = target.sweep_addresses()
        wanted = {str(a) for a in addresses}
        sock, raw = open_echo_socket(socket.AF_INET, self.proc_root)
        ident = os.getpid() & 0xFFFF
        with sock:
            _bind_to_device(sock, target.interface)
            sock.setblocking(False)

            def read_ready() -> None:
                for packet, source in queued_datagrams(sock):
                    if source in wanted and is_echo_reply(packet, raw, ident if raw else None):
                        found.setdefault(source, Sighting(self.name, source, self.clock()))

            def send(address: ipaddress.IPv4Address) -> None:
                seq = int(address) & 0xFFFF
                sock.sendto(echo_request(ident, seq), (str(address), 0))

            return paced_sweep(addresses, send, read_ready, sock.fileno(), self.rate,
                               self.wait_s)

    def _all_nodes_v6(self, target: ScanTarget, found: dict[str, Sighting]) -> str:
        if not socket.has_ipv6 or not target.own_v6:
            return "no IPv6 address on the interface"
        sock, raw = open_echo_socket(socket.AF_INET6, self.proc_root)
        ident = os.getpid() & 0xFFFF
        own = target.own_ips()
        replies = 0
        with sock:
            _bind_to_device(sock, target.interface)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, target.ifindex)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            sock.setblocking(False)

            def read_ready() -> None:
                nonlocal replies
                while True:
                    try:
                        packet, address = sock.recvfrom(2048)
                    except BlockingIOError:
                        return
                    except OSError:   # an ICMP error queued on the socket
                        continue
                    source = address[0].split("%")[0]
                    if source not in own and is_echo_reply(packet, False,
                                                           ident if raw else None, v6=True):
                        replies += 1
                        found.setdefault(source, Sighting(self.name, source, self.clock()))

            def send(_: int) -> None:
                sock.sendto(echo_request(ident, 1, v6=True), ("ff02::1", 0, 0, target.ifindex))

            # One multicast probe; answers from the link come within milliseconds.
            paced_sweep([0], send, read_ready, sock.fileno(), self.rate, min(self.wait_s, 1.0))
        return f"{replies} replies"


def _bind_to_device(sock: socket.socket, interface: str) -> None:
    """Keep probes on the scanned link (unprivileged since Linux 5.7); best effort."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    except OSError:
        pass
