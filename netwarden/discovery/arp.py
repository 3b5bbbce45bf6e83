"""Active ARP sweep of the target's IPv4 subnets over a raw packet socket (CAP_NET_RAW).

One who-has request per address, broadcast on the interface only, paced at ``rate``; every
reply from an address in the sweep is a sighting with its MAC. The sender address is the
interface's own address on that subnet.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netwarden.discovery.backend import MethodOutput
from netwarden.discovery.errors import MethodUnavailable
from netwarden.discovery.sweep import paced_sweep
from netwarden.model.discovery import ScanTarget, Sighting

ETH_P_ARP = 0x0806
BROADCAST = b"\xff" * 6
_ARP_HEADER = struct.Struct("!HHBBH6s4s6s4s")   # htype ptype hlen plen op sha spa tha tpa
NEEDS_RAW = ("needs CAP_NET_RAW for a raw packet socket (run as root, or give the service "
             "AmbientCapabilities=CAP_NET_RAW)")


def mac_bytes(mac: str) -> bytes:
    return bytes(int(part, 16) for part in mac.split(":"))


def mac_text(raw: bytes) -> str:
    return ":".join(f"{b:02x}" for b in raw)


def arp_request(own_mac: str, own_ip: ipaddress.IPv4Address,
                target: ipaddress.IPv4Address) -> bytes:
    """An Ethernet frame: broadcast who-has ``target``, tell ``own_ip``."""
    sha = mac_bytes(own_mac)
    arp = _ARP_HEADER.pack(1, 0x0800, 6, 4, 1, sha, own_ip.packed, b"\x00" * 6, target.packed)
    return BROADCAST + sha + struct.pack("!H", ETH_P_ARP) + arp


@dataclass(frozen=True)
class ArpReply:
    mac: str
    ip: str


def parse_arp_reply(frame: bytes) -> ArpReply | None:
    """The sender of an ARP reply in an Ethernet frame; None for anything else."""
    if len(frame) < 14 + _ARP_HEADER.size or frame[12:14] != struct.pack("!H", ETH_P_ARP):
        return None
    htype, ptype, hlen, plen, op, sha, spa, _tha, _tpa = _ARP_HEADER.unpack_from(frame, 14)
    if (htype, ptype, hlen, plen, op) != (1, 0x0800, 6, 4, 2):
        return None
    return ArpReply(mac_text(sha), str(ipaddress.IPv4Address(spa)))


class ArpSweep:
    name = "arp"
    phase = 1

    def __init__(self, rate: float, wait_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self.rate = rate
        self.wait_s = wait_s
        self.clock = clock

    def discover(self, target: ScanTarget, hosts: Sequence[str]) -> MethodOutput:
        addresses = target.sweep_addresses()
        wanted = {str(a) for a in addresses}
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
        except PermissionError:
            raise MethodUnavailable(NEEDS_RAW) from None
        found: dict[str, Sighting] = {}

        def read_ready() -> None:
            while True:
                try:
                    frame = sock.recv(2048)
                except BlockingIOError:
                    return
                except OSError:   # an ICMP error queued on the socket
                    continue
                reply = parse_arp_reply(frame)
                if reply is not None and reply.ip in wanted and reply.ip not in found:
                    found[reply.ip] = Sighting(self.name, reply.ip, self.clock(), reply.mac)

        with sock:
            sock.bind((target.interface, ETH_P_ARP))
            sock.setblocking(False)
            zero = ipaddress.IPv4Address(0)

            def send(address: ipaddress.IPv4Address) -> None:
                # No own address on that subnet: an RFC 5227 probe (sender 0.0.0.0).
                source = target.source_for(address) or zero
                sock.send(arp_request(target.mac, source, address))

            sent = paced_sweep(addresses, send, read_ready, sock.fileno(), self.rate,
                               self.wait_s)
        return MethodOutput(found.values(), f"{sent} requests, {len(found)} replies")
