"""Sum drained flows into one row per flow per write window (pure; no I/O).

Windows are aligned to multiples of the interval in wall-clock time, so rows from different
sensors and restarts line up. Bytes drained at time t belong to the window containing t.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from netwarden.sensor.identity import ExeRef


@dataclass(frozen=True)
class ProgramRef:
    """A flow's program before hashing: executables are (path, dev, ino) references."""

    exe: ExeRef
    name: str
    cmdline: str
    uid: int
    parent: ExeRef | None
    grandparent: ExeRef | None
    script: ExeRef | None
    container: str = ""


@dataclass(frozen=True)
class ExecSighting:
    """One exec, recorded in "every executable" mode."""

    time: float
    pid: int
    program: ProgramRef


@dataclass(frozen=True)
class FlowGroup:
    program: ProgramRef
    family: int
    protocol: str
    ip_protocol: int
    laddr: str
    lport: int
    raddr: str
    rport: int
    netns: int
    domain: str = ""


@dataclass
class FlowTotals:
    sent: int
    recv: int
    first_seen: float   # the drain that first saw this flow in the window


@dataclass
class Window:
    start: int
    counters: dict[FlowGroup, FlowTotals] = field(default_factory=dict)

    def add(self, group: FlowGroup, sent: int, recv: int, now: float) -> None:
        totals = self.counters.get(group)
        if totals is None:
            self.counters[group] = FlowTotals(sent, recv, now)
        else:
            totals.sent += sent
            totals.recv += recv


class WindowAggregator:
    def __init__(self, interval_s: int) -> None:
        self._interval = interval_s
        self._current: Window | None = None

    def window_start(self, now: float) -> int:
        return int(now // self._interval) * self._interval

    def add(self, now: float, groups: list[tuple[FlowGroup, int, int]]) -> Window | None:
        """Add a drain's flows; returns the previous window if ``now`` starts a new one."""
        closed = self.roll(now)
        if self._current is None:
            self._current = Window(self.window_start(now))
        for group, sent, recv in groups:
            self._current.add(group, sent, recv, now)
        return closed

    def roll(self, now: float) -> Window | None:
        """Close the current window if ``now`` is past it."""
        current = self._current
        if current is not None and self.window_start(now) != current.start:
            self._current = None
            return current
        return None

    def flush(self) -> Window | None:
        """Close the current window whatever the time (shutdown)."""
        current, self._current = self._current, None
        return current
