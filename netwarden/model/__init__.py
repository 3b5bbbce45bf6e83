"""Records that pass between netwarden's parts: frozen dataclasses, never dicts or strings.

The sensor produces them, the store writes and reads them, the viewers and the notifier show
them. Nothing here touches the system.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
from dataclasses import dataclass, field
from typing import NamedTuple

AF_INET = socket.AF_INET
AF_INET6 = socket.AF_INET6
AF_PACKET = 17

#: Address families by the label `export` prints for them (IP families print 4 and 6).
_FAMILY_LABELS = {AF_INET: "4", AF_INET6: "6", AF_PACKET: "packet"}

_IP_PROTOCOL_LABELS = {1: "icmp", 6: "tcp", 17: "udp", 58: "icmpv6", 132: "sctp",
                       136: "udplite", 262: "mptcp"}
_ETHERTYPE_LABELS = {0x0003: "all", 0x0800: "ip", 0x0806: "arp", 0x86DD: "ipv6"}

SOCK_STREAM, SOCK_DGRAM, SOCK_RAW = 1, 2, 3


def family_label(family: int) -> str:
    """'4', '6', or the family's name for non-IP sockets ('packet', 'af42')."""
    return _FAMILY_LABELS.get(family, f"af{family}")


def protocol_label(family: int, sock_type: int, protocol: int) -> str:
    """What `export` prints as protocol: tcp, udp, icmp, icmpv6, raw, ...

    Raw IP sockets print 'raw' unless they carry ICMP (ping as root); their protocol number
    is kept in the `ip_protocol` field. Packet sockets print the ethertype they bound.
    """
    if family == AF_PACKET:
        ethertype = socket.ntohs(protocol)
        return _ETHERTYPE_LABELS.get(ethertype, f"0x{ethertype:04x}")
    if sock_type == SOCK_RAW and protocol not in (1, 58):
        return "raw"
    return _IP_PROTOCOL_LABELS.get(protocol, f"ip{protocol}")


def format_address(family: int, raw: bytes) -> tuple[int, str]:
    """Render a 16-byte kernel address; IPv4-mapped IPv6 becomes plain IPv4.

    Returns the family the address really is (a dual-stack socket talking IPv4 is family 4)
    and its text; non-IP families have no address ("").
    """
    if family == AF_INET:
        return AF_INET, str(ipaddress.IPv4Address(raw[:4]))
    if family == AF_INET6:
        address = ipaddress.IPv6Address(raw[:16])
        if address.ipv4_mapped is not None:
            return AF_INET, str(address.ipv4_mapped)
        return AF_INET6, str(address)
    return family, ""


@dataclass(frozen=True)
class Executable:
    """A file that was executed, identified by content (sha256 '' when it could not be read)."""

    path: str
    sha256: str


@dataclass(frozen=True)
class ProgramIdentity:
    """Who made a flow: the process's executable, its ancestry and its user."""

    exe: Executable
    name: str
    cmdline: str
    uid: int
    parent: Executable | None = None
    grandparent: Executable | None = None
    script: Executable | None = None   # for #! scripts: exe is the interpreter
    container: str = ""                # container id/name; "" on the host


@dataclass(frozen=True)
class FlowRow:
    """Bytes of one flow in one write window, as stored."""

    time: int                 # window start, epoch seconds
    program: ProgramIdentity
    family: int               # AF_* of the traffic
    protocol: str             # protocol_label()
    ip_protocol: int          # IPPROTO_* (ethertype for packet sockets)
    laddr: str
    lport: int
    raddr: str
    rport: int
    sent: int
    recv: int
    netns: int = 0
    domain: str = ""          # the name raddr was resolved from, "" if unknown
    first_seen: float = 0.0   # when the sensor first saw it in this window (not stored)


class EventKind(enum.Enum):
    NEW_EXECUTABLE = "new_executable"     # first flow of a program (path never networked)
    EXE_MODIFIED = "exe_modified"         # a path's executable now hashes differently
    SENSOR_ERROR = "sensor_error"         # a hook or part of the sensor failed
    SENSOR_STARTED = "sensor_started"
    SENSOR_STOPPED = "sensor_stopped"
    NEW_DEVICE = "new_device"             # discovery saw a MAC it never saw and nobody named
    DEVICE_CHANGED = "device_changed"     # a known device's open ports changed
    HOST_SILENT = "host_silent"           # a fleet host's sink stopped sending heartbeats
    HOST_BACK = "host_back"               # ... and is heard from again
    TARGET_DOWN = "target_down"           # a watched target (or a whole group) stopped answering
    TARGET_UP = "target_up"               # ... and answers again
    DRIFT = "drift"                       # outside the learned baseline (model/baseline.py)
    PORT_SCAN = "port_scan"               # a remote address probed many local ports


#: A port_scan event's `probe`: the kind of probe most of the scan's ports saw (docs/port-scans.md).
SCAN_PROBE_KINDS = ("syn", "connect", "fin", "null", "xmas", "udp", "other")


@dataclass(frozen=True)
class Event:
    """A row of the events table: a kind and the fields of that kind."""

    time: float
    kind: EventKind
    fields: tuple[tuple[str, object], ...] = field(default=())

    @classmethod
    def of(cls, time: float, kind: EventKind, **fields: object) -> "Event":
        return cls(time, kind, tuple(sorted(fields.items())))

    def field_dict(self) -> dict[str, object]:
        return dict(self.fields)


@dataclass(frozen=True)
class ExecRow:
    """An exec, as stored in "every executable" mode."""

    time: float
    pid: int
    program: ProgramIdentity


class HashRecord(NamedTuple):
    """A persisted sha256 cache entry: valid while the file keeps this size/mtime/ctime."""

    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int
    sha256: str
    path: str


@dataclass(frozen=True)
class HealthSample:
    """A counter that moved in a window: drops, failures, misses. Zero deltas are not rows."""

    time: int
    source: str
    counter: str
    delta: int
