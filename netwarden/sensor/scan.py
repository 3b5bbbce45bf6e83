"""Inbound port-scan detection: probes of local ports (bpf/scan.bpf.c) -> `port_scan` events.

A source that touches more than ``ports`` distinct local ports (protocol and number; open or
closed) within ``window_s`` seconds is scanning. A scan ends after ``window_s`` seconds without
a new probe. What is written (docs/port-scans.md):

- a scan that ends within ``report_after_s`` of its first probe: one event when it ends, with
  every port it touched (``state = "ended"``, ``report = 1``);
- a longer scan: one event once it has lasted ``report_after_s`` (``state = "ongoing"``), then
  at most one more every ``summary_interval_s`` while it goes on, and a summary when it ends;
  each carries the totals of the whole scan so far and the count of reports before it;
- a scan going on when the sensor stops is written then (``state = "ongoing"``).

Sources in the allow-list are never counted. Nothing here touches the system: probes and the
clock come in as arguments.
"""

from __future__ import annotations

import bisect
import ipaddress
import logging
import os
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from netwarden.config import ScanConfig
from netwarden.model import Event, EventKind, format_address
from netwarden.sensor import bpf_records as rec
from netwarden.sensor import hooks
from netwarden.sensor.loader import ObjectConfig

log = logging.getLogger(__name__)

#: What each kernel probe kind is called in events ("half-open SYN", "full connect", ...).
PROBE_LABELS = {
    rec.PROBE_SYN: "syn", rec.PROBE_REQUEST: "syn",
    rec.PROBE_CONNECT_SYN: "connect", rec.PROBE_ESTABLISHED: "connect",
    rec.PROBE_FIN: "fin", rec.PROBE_NULL: "null", rec.PROBE_XMAS: "xmas",
    rec.PROBE_UDP: "udp", rec.PROBE_OTHER_TCP: "other",
}
#: When one port saw several kinds, the one that says most about the prober wins: a SYN to an
#: open port whose handshake then completed was a connect, not a half-open SYN.
_RANK = {"connect": 5, "syn": 4, "fin": 3, "null": 3, "xmas": 3, "udp": 2, "other": 1}
SAMPLE_SIZE = 20
#: Sources followed at once; beyond, the quietest undetected one is forgotten (and counted).
MAX_SOURCES = 20_000


class PortProbe(NamedTuple):
    """One probe of one local port, decoded from a ``struct scan_probe``."""

    time: float       # epoch seconds
    source: str
    target: str       # the local address probed
    protocol: str     # "tcp" or "udp"
    port: int
    kind: str         # a PROBE_LABELS value


PortId = tuple[str, int]   # (protocol, port)


@dataclass
class _Source:
    first: float
    last: float
    ports: dict[PortId, str] = field(default_factory=dict)       # port -> kind label
    first_seen: dict[PortId, float] = field(default_factory=dict)
    targets: set[str] = field(default_factory=set)
    detected: bool = False
    reports: int = 0
    reported_at: float = 0.0

    def add(self, probe: PortProbe) -> None:
        port = (probe.protocol, probe.port)
        known = self.ports.get(port)
        if known is None or _RANK[probe.kind] > _RANK[known]:
            self.ports[port] = probe.kind
        self.first_seen.setdefault(port, probe.time)
        self.targets.add(probe.target)
        self.first = min(self.first, probe.time)
        self.last = max(self.last, probe.time)

    def forget_before(self, cutoff: float) -> None:
        """Before detection only ports probed within the window count."""
        for port in [p for p, t in self.first_seen.items() if t < cutoff]:
            del self.ports[port], self.first_seen[port]
        self.first = min(self.first_seen.values(), default=self.last)


class ScanDetector:
    """Counts distinct ports per source; :meth:`tick` says which scans to report now."""

    def __init__(self, config: ScanConfig) -> None:
        self._config = config
        self._allow = [ipaddress.ip_network(c, strict=False) for c in config.allow]
        self._sources: dict[str, _Source] = {}
        self._lock = threading.Lock()
        self.allowed_probes = 0
        self.sources_forgotten = 0

    def allowed(self, source: str) -> bool:
        address = ipaddress.ip_address(source)
        return any(address in network for network in self._allow)

    def observe(self, probe: PortProbe) -> None:
        if self.allowed(probe.source):
            self.allowed_probes += 1
            return
        with self._lock:
            state = self._sources.get(probe.source)
            if state is None:
                self._make_room()
                state = self._sources[probe.source] = _Source(probe.time, probe.time)
            state.add(probe)
            if not state.detected:
                state.forget_before(probe.time - self._config.window_s)
                state.detected = len(state.ports) > self._config.ports

    def _make_room(self) -> None:
        if len(self._sources) < MAX_SOURCES:
            return
        quiet = [(s.last, a) for a, s in self._sources.items() if not s.detected]
        if quiet:
            del self._sources[min(quiet)[1]]
            self.sources_forgotten += 1

    def tick(self, now: float) -> list[Event]:
        """Events due at ``now``: scans that ended, or have gone on long enough to report."""
        cfg = self._config
        events = []
        with self._lock:
            for source, state in list(self._sources.items()):
                ended = now - state.last > cfg.window_s
                if not state.detected:
                    if ended:
                        del self._sources[source]
                    continue
                if ended:
                    events.append(self._report(source, state, "ended"))
                    del self._sources[source]
                elif (state.reports == 0 and now - state.first >= cfg.report_after_s) or \
                        (state.reports and now - state.reported_at >= cfg.summary_interval_s):
                    events.append(self._report(source, state, "ongoing"))
                    state.reported_at = now
        return events

    def flush(self) -> list[Event]:
        """Scans going on now (the sensor stops): report each as it stands."""
        with self._lock:
            events = [self._report(a, s, "ongoing") for a, s in self._sources.items()
                      if s.detected]
            self._sources.clear()
        return events

    @staticmethod
    def _report(source: str, state: _Source, status: str) -> Event:
        state.reports += 1
        kinds = Counter(state.ports.values())
        probe = max(kinds, key=lambda k: (kinds[k], _RANK[k]))
        ports = sorted(state.ports, key=lambda p: (p[1], p[0]))
        return Event.of(
            state.last, EventKind.PORT_SCAN, source=source, ports=len(ports),
            sample=[number for _, number in ports[:SAMPLE_SIZE]],
            protocols=sorted({protocol for protocol, _ in ports}), probe=probe,
            probes=dict(sorted(kinds.items())), first=round(state.first, 3),
            last=round(state.last, 3), duration_s=round(state.last - state.first, 3),
            targets=sorted(state.targets), state=status, report=state.reports)


def decode_probe(raw: bytes, wall_minus_monotonic: float) -> PortProbe | None:
    """A ring-buffer record as a probe; None for one the detector does not count (a
    multicast or broadcast destination is nobody's port)."""
    record = rec.ScanProbe.from_buffer_copy(raw)
    kind = PROBE_LABELS.get(record.kind)
    if kind is None:
        return None
    _, source = format_address(record.family, bytes(record.remote_addr))
    _, target = format_address(record.family, bytes(record.local_addr))
    address = ipaddress.ip_address(target)
    if address.is_multicast or target == "255.255.255.255":
        return None
    return PortProbe(record.timestamp_ns / 1e9 + wall_minus_monotonic, source, target,
                     "udp" if record.protocol == 17 else "tcp", record.local_port, kind)



#: Before 5.17 kfree_skb has no reason: the receive functions whose own kfree_skb() drops
#: a packet no socket took (udp_rcv/udpv6_rcv where __udp*_lib_rcv is inlined into them).
DROP_SITE_FUNCTIONS = ("tcp_v4_rcv", "tcp_v6_rcv", "__udp4_lib_rcv", "__udp6_lib_rcv",
                       "udp_rcv", "udpv6_rcv")
DROP_SITES = 8   # NW_DROP_SITES in scan.bpf.c


def drop_sites(kallsyms: Iterable[str]) -> list[tuple[int, int]]:
    """[start, end) of each DROP_SITE_FUNCTIONS in /proc/kallsyms' text (a function ends
    where the next text symbol starts)."""
    addresses: list[int] = []
    starts: dict[str, int] = {}
    for line in kallsyms:
        parts = line.split()
        if len(parts) < 3 or parts[1] not in ("t", "T"):
            continue
        address = int(parts[0], 16)
        addresses.append(address)
        if parts[2] in DROP_SITE_FUNCTIONS:   # built in, or in a module ("[ipv6]")
            starts.setdefault(parts[2], address)
    addresses.sort()
    sites = []
    for name in DROP_SITE_FUNCTIONS:
        start = starts.get(name, 0)
        if not start:
            continue
        following = bisect.bisect_right(addresses, start)
        if following < len(addresses):
            sites.append((start, addresses[following]))
    return sites


def scan_object_config(cfg: ScanConfig, features: hooks.KernelFeatures,
                       proc_root: str = "/proc") -> ObjectConfig:
    """What the sensor sets in scan.bpf.o. A (source, port, kind) passes the kernel again
    after half the window, so a scan that keeps probing the same ports stays alive. Kernels
    without drop reasons get the drop sites instead (root reads real kallsyms addresses)."""
    with_reason = hooks.has_drop_reason(features)
    rodata: dict[str, int | tuple[int, ...]] = {
        "repeat_after_ns": int(cfg.window_s * 1e9 / 2), "has_drop_reason": int(with_reason)}
    if not with_reason:
        try:
            with open(os.path.join(proc_root, "kallsyms"), encoding="ascii") as kallsyms:
                sites = drop_sites(kallsyms)[:DROP_SITES]
        except OSError as exc:   # then only open ports are seen; say so
            log.warning("port scans: no drop sites, probes of closed ports unseen: %s", exc)
            sites = []
        sites += [(0, 0)] * (DROP_SITES - len(sites))
        rodata["drop_site_start"] = tuple(start for start, _ in sites)
        rodata["drop_site_end"] = tuple(end for _, end in sites)
    leave_out = {} if cfg.open_ports else {
        "sockops_scan": "left out by [scan] open_ports = false (closed ports only)"}
    return ObjectConfig(rodata=rodata, map_entries={"scan_seen": cfg.table_entries},
                        leave_out=leave_out)
