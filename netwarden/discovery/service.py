"""The periodic discovery service: a pass per interface every interval, written to the store.

Each pass: read the interfaces (addresses may have changed), scan every target, write
devices, presence and events in one transaction per target, then close the presence windows
of devices unseen for longer than the gap. A pass that fails is logged and counted as a
health row; the service goes on.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from netwarden.config import DiscoveryConfig
from netwarden.discovery.errors import DiscoveryInputError
from netwarden.discovery.scan import Scanner
from netwarden.discovery.target import LinkState, choose_target, parse_subnet
from netwarden.model import Event
from netwarden.model.discovery import KnownDevice, ScanResult, ScanTarget
from netwarden.stopper import Stopper
from netwarden.store.discovery_writer import DiscoveryWriter

log = logging.getLogger("netwarden.discovery")


def targets_for(config: DiscoveryConfig, state: LinkState,
                interfaces: Sequence[str] = ()) -> list[ScanTarget]:
    """One target per interface; configured subnets go to the interface they lie on."""
    names: list[str | None] = list(interfaces or config.interfaces) or [None]
    subnets = [parse_subnet(s) for s in config.subnets]
    targets, placed = [], set()
    for name in names:
        info = next((i for i in state.interfaces if i.name == name), None)
        own = [a.network for a in info.v4] if info is not None else []
        mine = [s for s in subnets if any(s.subnet_of(n) for n in own)]  # type: ignore[arg-type]
        placed.update(mine)
        if subnets and not mine and info is not None:
            continue   # this interface carries none of the configured subnets
        targets.append(choose_target(state, name, [str(s) for s in mine],
                                     config.max_subnet_size))
    for subnet in subnets:
        if subnet not in placed:
            raise DiscoveryInputError(f"[discovery] subnets: {subnet} is on none of the "
                                      "scanned interfaces")
    return targets


class DiscoveryService:
    def __init__(self, config: DiscoveryConfig, scanner: Scanner, writer: DiscoveryWriter,
                 link_state: Callable[[], LinkState], stop: Stopper,
                 interfaces: Sequence[str] = (),
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.scanner = scanner
        self.writer = writer
        self.link_state = link_state
        self.stop = stop
        self.interfaces = tuple(interfaces)
        self.clock = clock

    def known(self) -> dict[str, KnownDevice]:
        """The config's known devices, overridden by those set from the CLI (the store)."""
        merged = {k.mac: k for k in self.config.known}
        merged.update(self.writer.known_devices())
        return merged

    def run_once(self) -> tuple[list[ScanResult], list[Event]]:
        results, events = [], []
        for target in targets_for(self.config, self.link_state(), self.interfaces):
            result = self.scanner.scan(target)
            events.extend(self.writer.record_scan(result, self.config.presence_gap_s,
                                                  self.known()))
            results.append(result)
            for report in result.reports:
                if report.reason:
                    log.warning("%s on %s: %s: %s", report.method, target.interface,
                                report.state.value, report.reason)
        closed = self.writer.close_stale(self.clock(), self.config.presence_gap_s)
        log.info("pass done: %s; %d new events, %d windows closed",
                 ", ".join(f"{r.target.interface} {len(r.devices)} devices" for r in results),
                 len(events), closed)
        return results, events

    def run(self) -> None:
        """Pass after pass until stopped. The caller checks the targets once before: later,
        an interface that went away is logged and retried at the next pass."""
        while not self.stop.is_set():
            started = self.clock()
            try:
                self.run_once()
            except DiscoveryInputError as exc:
                log.error("discovery pass skipped: %s", exc)
            except Exception:  # noqa: BLE001 - a failed pass must not end the service
                log.exception("discovery pass failed")
            self.stop.wait(max(0.0, started + self.config.interval_s - self.clock()))
