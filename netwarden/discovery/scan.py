"""One discovery pass: run the chosen methods phase by phase, then merge what they found.

Phase 1 methods find hosts by themselves (ARP and ICMP sweeps, mDNS, SSDP) and run at once,
each in its own thread; phase 2 reads the neighbour table the sweeps just filled; phase 3
probes the live hosts (NetBIOS, TCP ports). A last neighbour-table read maps the addresses
found without a MAC (echo, mDNS, SSDP) to MACs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from netwarden.config import DiscoveryConfig
from netwarden.discovery.arp import ArpSweep
from netwarden.discovery.backend import DiscoveryMethod, run_method
from netwarden.discovery.icmp import IcmpSweep
from netwarden.discovery.inventory import live_hosts, merge
from netwarden.discovery.mdns import MdnsBrowse
from netwarden.discovery.neighbours import (
    NeighbourEntry, NeighbourTable, read_neighbours, usable_sightings,
)
from netwarden.discovery.netbios import NetbiosQuery
from netwarden.discovery.portscan import PortScanLimits, TcpConnectScan
from netwarden.discovery.ssdp import SsdpSearch
from netwarden.model.discovery import MethodReport, ScanResult, ScanTarget, Sighting

log = logging.getLogger("netwarden.discovery")


def build_methods(config: DiscoveryConfig, methods: Sequence[str] | None = None,
                  ports: Sequence[int] | None = None,
                  proc_root: Path = Path("/proc")) -> list[DiscoveryMethod]:
    """The backends for ``methods`` (default: the config's), in config order."""
    chosen = tuple(methods if methods is not None else config.methods)
    factories: dict[str, Callable[[], DiscoveryMethod]] = {
        "neighbours": lambda: NeighbourTable(config.presence_gap_s),
        "arp": lambda: ArpSweep(config.probe_rate, config.reply_wait_s),
        "icmp": lambda: IcmpSweep(config.probe_rate, config.reply_wait_s, proc_root),
        "mdns": lambda: MdnsBrowse(config.listen_s),
        "ssdp": lambda: SsdpSearch(config.listen_s),
        "netbios": lambda: NetbiosQuery(config.listen_s, config.probe_rate),
        "tcp": lambda: TcpConnectScan(
            ports if ports is not None else config.ports,
            PortScanLimits(config.tcp_concurrency, config.tcp_rate, config.tcp_timeout_s)),
    }
    return [factories[name]() for name in chosen]


class Scanner:
    def __init__(self, methods: Sequence[DiscoveryMethod], neighbour_max_age_s: float,
                 clock: Callable[[], float] = time.time,
                 neighbours: Callable[[int], list[NeighbourEntry]] = read_neighbours) -> None:
        self.methods = list(methods)
        self.neighbour_max_age_s = neighbour_max_age_s
        self.clock = clock
        self.neighbours = neighbours

    def scan(self, target: ScanTarget) -> ScanResult:
        started = self.clock()
        reports: list[MethodReport] = []
        for phase in sorted({m.phase for m in self.methods}):
            hosts = live_hosts(reports, target)
            batch = [m for m in self.methods if m.phase == phase]
            with ThreadPoolExecutor(max_workers=len(batch),
                                    thread_name_prefix=f"discovery-{phase}") as pool:
                reports.extend(pool.map(run_method, batch, [target] * len(batch),
                                        [hosts] * len(batch)))
        order = {m.name: i for i, m in enumerate(self.methods)}
        reports.sort(key=lambda r: order[r.method])
        devices, unresolved = merge(target, reports, self._resolver(target))
        return ScanResult(started, target, tuple(reports), devices, unresolved)

    def _resolver(self, target: ScanTarget) -> list[Sighting]:
        """IP-to-MAC facts from the neighbour table now (any age: only for mapping)."""
        try:
            entries = self.neighbours(target.ifindex)
        except OSError as exc:
            log.warning("cannot read the neighbour table: %s", exc)
            return []
        return usable_sightings(entries, target, self.clock(), float("inf"), "resolver")
