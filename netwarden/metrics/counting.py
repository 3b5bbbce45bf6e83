"""What /metrics counts: the store's new rows, folded into counters that never go back.

Why counters since this process started, and not sums over the store: retention deletes the
oldest rows a few thousand at a time, so any sum over the store falls whenever it prunes, and
Prometheus reads every fall of a counter as a restart from zero (``rate()`` would then show
the whole retained total as one burst). Instead each scrape reads the rows written since the
last one (by row number: store/metric_queries.py) and adds them to counters kept in memory.
A counter starts at 0 when the exporter (or the web viewer) first reads the store: that is a
counter reset, which Prometheus handles, and ``increase()``/``rate()`` are exact across it.

Executables are labelled by path, at most ``top_n`` of them (bounded cardinality), ranked by
their bytes (sent + received) since the start. Bytes go to the series that is current when
they are counted: an executable's own while it ranks in the top N, else ``exe="other"``. An
executable that falls out keeps its own count (its series pauses) and resumes from it if it
comes back; "other" keeps what it was given. So every byte is counted once, in one series,
and no series ever decreases.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from netwarden.model import SCAN_PROBE_KINDS, EventKind
from netwarden.store import metric_queries as q
from netwarden.store.watch_queries import TargetStatus, has_watch_tables, statuses

OTHER = "other"       # the exe label of every executable outside the top N (paths start "/")
#: The exe label of flows whose process the store cannot name (an empty label value would
#: be no label at all to Prometheus).
UNKNOWN = "unknown"
#: Health counters the sensor writes as moves of a level (their sum is the current value).
SINK_LEVELS = ("behind_rows", "behind_s")
#: The directions a silent-zero alarm names (sensor/silent_zero.py's DIRECTIONS).
SILENT_ZERO_DIRECTIONS = ("send", "receive")


@dataclass
class Direction:
    sent: int = 0
    recv: int = 0

    def add(self, sent: int, recv: int) -> None:
        self.sent += sent
        self.recv += recv

    @property
    def total(self) -> int:
        return self.sent + self.recv


@dataclass
class Counts:
    """Everything counted so far (the exposition reads a copy)."""

    started: float
    store_up: bool = False
    store_problem: str = ""
    own: dict[str, Direction] = field(default_factory=dict)   # exe -> its own series
    other: Direction = field(default_factory=Direction)
    labelled: tuple[str, ...] = ()                           # the current top N
    health: Counter[tuple[str, str]] = field(default_factory=Counter)   # (source, counter)
    sink_levels: dict[str, int] = field(default_factory=dict)
    events: Counter[str] = field(default_factory=Counter)
    sensor_errors: Counter[str] = field(default_factory=Counter)        # by component
    silent_zero: Counter[str] = field(default_factory=Counter)          # by direction
    devices: q.DeviceCounts | None = None
    watch: list[TargetStatus] | None = None   # None: a store without the watch's tables
    scans: Counter[str] = field(default_factory=Counter)                # by probe kind


class StoreCounter:
    """The counts of one process's scrapes of one store (thread-safe: servers are threaded)."""

    def __init__(self, top_n: int, clock: Callable[[], float] = time.time) -> None:
        self.top_n = top_n
        self._clock = clock
        self._lock = threading.Lock()
        self._counts = Counts(started=clock())
        for kind in EventKind:     # every known kind from 0, so increase() sees the first
            self._counts.events[kind.value] = 0
        for direction in SILENT_ZERO_DIRECTIONS:
            self._counts.silent_zero[direction] = 0
        for probe in SCAN_PROBE_KINDS:
            self._counts.scans[probe] = 0
        self._store_id: str | None = None
        self._cursors = q.Cursors(0, 0, 0)
        self._ranking: dict[str, int] = {}       # exe -> bytes since the start
        self._paths: dict[int, str] = {}         # process id -> exe path (never changes)

    def observe(self, conn: sqlite3.Connection) -> None:
        """Fold in the rows written since the last call (raises sqlite3.Error)."""
        with self._lock:
            newest = q.newest_rows(conn)
            store_id = q.store_id(conn)
            if store_id != self._store_id or _went_back(newest, self._cursors):
                self._start_reading(conn, store_id, newest)
            else:
                self._count_flows(conn, newest.flows)
                self._count_health(conn, newest.health)
                self._count_events(conn, newest.events)
            self._cursors = newest
            self._counts.devices = q.device_counts(conn)
            self._counts.watch = statuses(conn, self._clock()) \
                if has_watch_tables(conn) else None
            self._counts.store_up, self._counts.store_problem = True, ""

    def unavailable(self, problem: str) -> None:
        """The store could not be read: the counters stay as they were, store_up says 0."""
        with self._lock:
            self._counts.store_up, self._counts.store_problem = False, problem

    def snapshot(self) -> Counts:
        with self._lock:
            c = self._counts
            return Counts(c.started, c.store_up, c.store_problem,
                          {k: Direction(v.sent, v.recv) for k, v in c.own.items()},
                          Direction(c.other.sent, c.other.recv), c.labelled,
                          Counter(c.health), dict(c.sink_levels), Counter(c.events),
                          Counter(c.sensor_errors), Counter(c.silent_zero), c.devices,
                          None if c.watch is None else list(c.watch), Counter(c.scans))

    def _start_reading(self, conn: sqlite3.Connection, store_id: str,
                       newest: q.Cursors) -> None:
        """A store seen for the first time (or replaced by a new file): count from its
        current end. Only the sink's lag is a level, read whole once."""
        self._store_id = store_id
        self._paths.clear()
        self._counts.sink_levels = q.health_sums(conn, "sink", SINK_LEVELS, newest.health)

    def _count_flows(self, conn: sqlite3.Connection, upto: int) -> None:
        moves = q.flow_bytes_between(conn, self._cursors.flows, upto)
        if not moves:
            return
        missing = [m.process_id for m in moves if m.process_id not in self._paths]
        if missing:
            self._paths.update(q.executable_paths(conn, missing))
        per_exe: dict[str, Direction] = {}
        for move in moves:
            exe = self._paths.get(move.process_id) or UNKNOWN
            per_exe.setdefault(exe, Direction()).add(int(move.sent), int(move.recv))
        for exe, moved in per_exe.items():
            self._ranking[exe] = self._ranking.get(exe, 0) + moved.total
        labelled = self._rank()
        for exe, moved in per_exe.items():
            target = self._counts.own.setdefault(exe, Direction()) if exe in labelled \
                else self._counts.other
            target.add(moved.sent, moved.recv)

    def _rank(self) -> tuple[str, ...]:
        """The top N by bytes since the start (ties by path, so the choice is stable)."""
        ranked = sorted(self._ranking.items(), key=lambda item: (-item[1], item[0]))
        self._counts.labelled = tuple(exe for exe, _ in ranked[:self.top_n])
        return self._counts.labelled

    def _count_health(self, conn: sqlite3.Connection, upto: int) -> None:
        for move in q.health_between(conn, self._cursors.health, upto):
            if move.source == "sink" and move.counter in SINK_LEVELS:
                levels = self._counts.sink_levels
                levels[move.counter] = levels.get(move.counter, 0) + int(move.delta)
            elif move.delta > 0:    # a counter never goes back (no sensor writes less)
                self._counts.health[(move.source, move.counter)] += int(move.delta)

    def _count_events(self, conn: sqlite3.Connection, upto: int) -> None:
        for kind, detail, direction, count in q.events_between(
                conn, self._cursors.events, upto):
            self._counts.events[kind] += count
            if kind == EventKind.SENSOR_ERROR.value:
                self._counts.sensor_errors[detail] += count
                if detail == "silent-zero":
                    self._counts.silent_zero[direction] += count
            elif kind == EventKind.PORT_SCAN.value and detail:
                self._counts.scans[detail] += count


def _went_back(newest: q.Cursors, cursors: q.Cursors) -> bool:
    """A table whose last row is older than the one read before: the file was replaced."""
    return any(n < c for n, c in zip(newest, cursors))
