"""The kernel's neighbour table (ARP and IPv6 ND) for the scanned interface, via netlink.

Unprivileged and passive. An entry counts as a sighting only while it is usable (reachable,
stale, delay, probe or permanent) and was last confirmed within ``max_age_s``; its time is
when the kernel last confirmed it, not when we read it, so a departed device's stale entry
does not keep it present.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from netwarden.discovery.backend import MethodOutput
from netwarden.model.discovery import ScanTarget, Sighting

NUD_INCOMPLETE, NUD_REACHABLE, NUD_STALE, NUD_DELAY = 0x01, 0x02, 0x04, 0x08
NUD_PROBE, NUD_FAILED, NUD_NOARP, NUD_PERMANENT = 0x10, 0x20, 0x40, 0x80
USABLE = NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT


@dataclass(frozen=True)
class NeighbourEntry:
    ip: str
    mac: str
    state: int
    confirmed_age_s: float   # seconds since the kernel last confirmed it


def read_neighbours(ifindex: int) -> list[NeighbourEntry]:
    from pyroute2 import IPRoute
    ticks = os.sysconf("SC_CLK_TCK")   # NDA_CACHEINFO ages are clock_t
    entries = []
    with IPRoute() as ipr:
        for msg in ipr.get_neighbours(ifindex=ifindex):
            ip, mac = msg.get_attr("NDA_DST"), msg.get_attr("NDA_LLADDR")
            info = msg.get_attr("NDA_CACHEINFO") or {}
            if ip and mac:
                entries.append(NeighbourEntry(ip, mac.lower(), msg["state"],
                                              info.get("ndm_confirmed", 0) / ticks))
    return entries


def usable_sightings(entries: Iterable[NeighbourEntry], target: ScanTarget, now: float,
                     max_age_s: float, method: str = "neighbours") -> list[Sighting]:
    """Pure: the entries that say a device on the target's link was recently here."""
    own = target.own_ips()
    result = []
    for entry in entries:
        if not entry.state & USABLE or entry.ip in own or not target.in_scope(entry.ip):
            continue
        if _is_multicast_or_zero(entry.mac):
            continue
        if entry.state & NUD_PERMANENT or entry.confirmed_age_s <= max_age_s:
            seen = now if entry.state & NUD_PERMANENT else now - entry.confirmed_age_s
            result.append(Sighting(method, entry.ip, seen, entry.mac))
    return result


def _is_multicast_or_zero(mac: str) -> bool:
    return mac == "00:00:00:00:00:00" or bool(int(mac[:2], 16) & 0x01)


class NeighbourTable:
    name = "neighbours"
    phase = 2   # read after the sweeps, which make the kernel resolve every live address

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.time,
                 reader: Callable[[int], list[NeighbourEntry]] = read_neighbours) -> None:
        self.max_age_s = max_age_s
        self.clock = clock
        self.reader = reader

    def discover(self, target: ScanTarget, hosts: Sequence[str]) -> MethodOutput:
        entries = self.reader(target.ifindex)
        found = usable_sightings(entries, target, self.clock(), self.max_age_s)
        return MethodOutput(found, f"{len(entries)} entries, {len(found)} usable")
