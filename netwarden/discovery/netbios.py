"""NetBIOS name service: a node status query (RFC 1002 4.2.17, NBSTAT) to each live host.

The query for the wildcard name '*' asks a host for its whole name table (what
`nmblookup -A` and nbtscan send); the unique name with suffix 0x00 is its computer name and a
group name with suffix 0x00 its workgroup. Unicast UDP to port 137, no privileges needed.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netwarden.discovery.backend import MethodOutput, own_ipv4
from netwarden.discovery.sweep import paced_sweep, queued_datagrams
from netwarden.model.discovery import Finding, NameFound, ScanTarget, ServiceFound

NBNS_PORT = 137
NBSTAT, CLASS_IN = 0x0021, 0x0001
GROUP_FLAG = 0x8000


def encode_name(name: str, suffix: int = 0x00) -> bytes:
    """First-level encoding (RFC 1001 14.1): 16 bytes -> 32 letters 'A'..'P', as a label."""
    raw = name.encode("ascii")
    raw = raw + (b"\x00" if name == "*" else b" ") * (15 - len(raw)) + bytes([suffix])
    letters = bytes(c for b in raw for c in (0x41 + (b >> 4), 0x41 + (b & 0x0F)))
    return bytes([32]) + letters + b"\x00"


def node_status_request(transaction_id: int) -> bytes:
    header = struct.pack("!HHHHHH", transaction_id, 0x0000, 1, 0, 0, 0)
    return header + encode_name("*") + struct.pack("!HH", NBSTAT, CLASS_IN)


@dataclass(frozen=True)
class NameEntry:
    name: str
    suffix: int
    group: bool


def parse_node_status(packet: bytes) -> list[NameEntry]:
    """The name table of a node status response; ValueError if it is not one."""
    if len(packet) < 12:
        raise ValueError("short packet")
    _tid, flags, _qd, answers, _ns, _ar = struct.unpack_from("!HHHHHH", packet)
    if not flags & 0x8000 or answers < 1:
        raise ValueError("not a response with an answer")
    offset = _skip_name(packet, 12)
    rr_type, _rr_class, _ttl, rdlength = struct.unpack_from("!HHIH", packet, offset)
    offset += 10
    if rr_type != NBSTAT or offset + rdlength > len(packet) or rdlength < 1:
        raise ValueError("not a node status answer")
    count = packet[offset]
    offset += 1
    entries = []
    for _ in range(count):
        if offset + 18 > len(packet):
            raise ValueError("truncated name table")
        raw, (flags,) = packet[offset:offset + 16], struct.unpack_from("!H", packet, offset + 16)
        name = raw[:15].decode("ascii", "replace").rstrip(" \x00")
        entries.append(NameEntry(name, raw[15], bool(flags & GROUP_FLAG)))
        offset += 18
    return entries


def _skip_name(packet: bytes, offset: int) -> int:
    while True:
        if offset >= len(packet):
            raise ValueError("truncated name")
        length = packet[offset]
        if length & 0xC0 == 0xC0:   # a compression pointer ends the name
            return offset + 2
        offset += 1 + length
        if length == 0:
            return offset


def computer_name(entries: Sequence[NameEntry]) -> str:
    unique = [e.name for e in entries if e.suffix == 0x00 and not e.group]
    servers = [e.name for e in entries if e.suffix == 0x20 and not e.group]
    return (unique or servers or [""])[0]


def workgroup(entries: Sequence[NameEntry]) -> str:
    return next((e.name for e in entries if e.suffix == 0x00 and e.group), "")


class NetbiosQuery:
    name = "netbios"
    phase = 3

    def __init__(self, listen_s: float, rate: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.listen_s = listen_s
        self.rate = rate
        self.clock = clock

    def discover(self, target: ScanTarget, hosts: Sequence[str]) -> MethodOutput:
        own = own_ipv4(target, "query from")
        addresses = [h for h in hosts if ipaddress.ip_address(h).version == 4]
        findings: list[Finding] = []
        answered: set[str] = set()
        tid = os.getpid() & 0xFFFF
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with sock:
            sock.bind((own, 0))
            sock.setblocking(False)

            def read_ready() -> None:
                for packet, ip in queued_datagrams(sock):
                    if ip in addresses and ip not in answered:
                        self._answer(packet, ip, answered, findings)

            def send(ip: str) -> None:
                sock.sendto(node_status_request(tid), (ip, NBNS_PORT))

            # Wait a short, fixed time: hosts without NetBIOS do not answer at all.
            paced_sweep(addresses, send, read_ready, sock.fileno(), self.rate,
                        min(self.listen_s, 1.0) if addresses else 0)
        return MethodOutput(findings, f"{len(addresses)} queries, {len(answered)} answers",
                            addresses)

    def _answer(self, packet: bytes, ip: str, answered: set[str],
                findings: list[Finding]) -> None:
        try:
            entries = parse_node_status(packet)
        except (ValueError, struct.error):
            return
        answered.add(ip)
        now = self.clock()
        name = computer_name(entries)
        if name:
            findings.append(NameFound(self.name, ip, now, name))
        findings.append(ServiceFound(self.name, ip, now, "netbios-ns", NBNS_PORT, name,
                                     (("workgroup", workgroup(entries)),)))
