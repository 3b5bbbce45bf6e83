"""The one interface every discovery method implements, and the wrapper that times it.

A method either returns its findings, raises :class:`MethodUnavailable` (it cannot run here:
say why), or fails with any other exception (reported as failed, with the error). Phase-1
methods find hosts on their own; phase-2 methods probe the hosts phase 1 found.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from netwarden.discovery.errors import MethodUnavailable
from netwarden.model.discovery import Finding, MethodReport, MethodState, ScanTarget

log = logging.getLogger("netwarden.discovery")

Clock = Callable[[], float]


class DiscoveryMethod(Protocol):
    name: str
    phase: int   # 1: finds hosts by itself; 2: probes the live hosts of phase 1

    def discover(self, target: ScanTarget, hosts: Sequence[str]) -> "MethodOutput":
        """Find what this method can; ``hosts`` are the live IPv4 addresses (phase 2)."""
        ...


class MethodOutput:
    """Findings plus a one-line summary ('254 probes, 5 replies') and the probed targets."""

    def __init__(self, findings: Iterable[Finding], summary: str = "",
                 targets: Sequence[str] = ()) -> None:
        self.findings = tuple(findings)
        self.summary = summary
        self.targets = tuple(targets)


def own_ipv4(target: ScanTarget, purpose: str) -> str:
    """The interface's first IPv4 address, to ``purpose`` ("query from"); a method that needs
    one cannot run without it."""
    if not target.own_v4:
        raise MethodUnavailable(f"{target.interface} has no IPv4 address to {purpose}")
    return str(target.own_v4[0].ip)


def run_method(method: DiscoveryMethod, target: ScanTarget, hosts: Sequence[str],
               clock: Clock = time.monotonic) -> MethodReport:
    started = clock()
    try:
        output = method.discover(target, hosts)
    except MethodUnavailable as exc:
        return MethodReport(method.name, MethodState.UNAVAILABLE, str(exc), clock() - started)
    except Exception as exc:  # noqa: BLE001 - one broken method must not end the pass
        log.warning("discovery method %s failed", method.name, exc_info=True)
        reason = f"{type(exc).__name__}: {exc}"
        return MethodReport(method.name, MethodState.FAILED, reason, clock() - started)
    return MethodReport(method.name, MethodState.RAN, "", clock() - started, output.findings,
                        output.summary, output.targets)
