"""The silent-zero alarm: interfaces move bytes while the sensor attributes none.

The failure that hit picosnitch users after kernel updates: a hook still loads but reads 0,
so a direction goes silent without any error. Every drain compares what the interfaces of the
sensor's network namespace counted (/proc/net/dev) with what was attributed, per direction,
over the last ``period_s``; a direction with at least ``min_bytes`` on the interfaces and none
attributed raises the alarm once, and re-arms when attribution resumes.

Forwarded traffic (a router, a bridge for VMs) moves interface counters without any socket:
such hosts may need a larger ``min_bytes`` or the alarm off (period 0).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

DIRECTIONS = ("send", "receive")


@dataclass(frozen=True)
class Sample:
    time: float
    interface: tuple[int, int]     # bytes (sent, received) on the interfaces since last sample
    attributed: tuple[int, int]    # bytes (sent, received) attributed since last sample


@dataclass(frozen=True)
class Silence:
    direction: str
    interface_bytes: int
    period_s: float


def read_interface_totals(proc_root: str = "/proc") -> tuple[int, int]:
    """(tx bytes, rx bytes) summed over every interface of this network namespace."""
    tx = rx = 0
    with open(f"{proc_root}/net/dev", encoding="ascii") as handle:
        for line in handle.readlines()[2:]:
            _name, _, fields = line.partition(":")
            values = fields.split()
            if len(values) >= 9:
                rx += int(values[0])
                tx += int(values[8])
    return tx, rx


class SilentZeroDetector:
    def __init__(self, period_s: float, min_bytes: int) -> None:
        self._period = period_s
        self._min = min_bytes
        self._samples: deque[Sample] = deque()
        self._last_totals: tuple[int, int] | None = None
        self._silent = {d: False for d in DIRECTIONS}

    def observe(self, now: float, interface_totals: tuple[int, int],
                attributed: tuple[int, int]) -> list[Silence]:
        """Feed one drain; returns the directions that have just gone silent."""
        if self._period <= 0:
            return []
        last, self._last_totals = self._last_totals, interface_totals
        if last is None:
            return []
        # Counters shrink when an interface goes away: count that drain as nothing moved.
        moved = tuple(max(0, now_total - before)
                      for now_total, before in zip(interface_totals, last, strict=True))
        self._samples.append(Sample(now, moved, attributed))  # type: ignore[arg-type]
        while self._samples and self._samples[0].time <= now - self._period:
            self._samples.popleft()
        # Judge only a full period of history (the first sample opens it).
        if not self._samples or now - self._samples[0].time < self._period * 0.9:
            return []
        found = []
        for index, direction in enumerate(DIRECTIONS):
            on_interfaces = sum(s.interface[index] for s in self._samples)
            counted = sum(s.attributed[index] for s in self._samples)
            if counted > 0:
                self._silent[direction] = False
            elif on_interfaces >= self._min and not self._silent[direction]:
                self._silent[direction] = True
                found.append(Silence(direction, on_interfaces, self._period))
        return found
