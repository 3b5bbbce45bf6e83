"""What `netwarden watch status/outages`, both viewers, the metrics and the report read of
the connectivity watch: each target's state and uptime, its outages, its latency samples.

Read from the local store only: the watch tables are not shipped to a fleet's server (yet).
Uptime over a span is the share of the watched time in it that the target was up (time
outside its schedule, or before enough probes, counts neither way).
"""

from __future__ import annotations

import sqlite3
from typing import NamedTuple

DAY_S = 86400.0
WEEK_S = 7 * DAY_S


class TargetStatus(NamedTuple):
    name: str
    probe: str                     # "group" for a group
    group: str                     # the group a target belongs to ("" if none)
    is_group: bool
    state: str                     # up, down, unknown
    since: float | None            # start of the current state's window
    last_probe: float | None
    last_latency_ms: float | None  # None: the last probe failed (or none yet)
    avg_latency_ms: float | None   # over the last hour's answered probes
    uptime_day: float | None       # 0..1 over the last 24 h; None: not watched then
    uptime_week: float | None

    def as_record(self) -> dict[str, object]:
        return self._asdict()


class Outage(NamedTuple):
    name: str
    probe: str
    group: str
    is_group: bool
    start: float
    end: float | None              # None: still down
    last: float                    # the latest failed probe in it
    reason: str

    def duration(self, now: float) -> float:
        return (self.end if self.end is not None else now) - self.start

    def as_record(self) -> dict[str, object]:
        return self._asdict()


class OutageSummary(NamedTuple):
    name: str
    probe: str
    is_group: bool
    count: int
    total_s: float
    longest_s: float


def has_watch_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'watch_windows'").fetchone() is not None


def _targets(conn: sqlite3.Connection) -> list[tuple[int, str, str, str, bool]]:
    return [(int(i), n, p, g, bool(is_g)) for i, n, p, g, is_g in conn.execute(
        "SELECT id, name, probe, group_name, is_group FROM watch_targets "
        "ORDER BY is_group DESC, group_name, name")]


def uptime(conn: sqlite3.Connection, target_id: int, since: float, now: float) -> float | None:
    """Share of [since, now] the target was up, of the time it was up or down."""
    up = down = 0.0
    for state, start, last, end in conn.execute(
            "SELECT state, start, last, end FROM watch_windows WHERE target_id = ? AND "
            "COALESCE(end, ?) > ? AND start < ?", (target_id, now, since, now)):
        stop = end if end is not None else now
        span = max(0.0, min(stop, now) - max(start, since))
        if state == "up":
            up += span
        else:
            down += span
    return None if up + down <= 0 else up / (up + down)


def statuses(conn: sqlite3.Connection, now: float) -> list[TargetStatus]:
    """Every target and group: groups first, then by group and name."""
    rows = []
    for target_id, name, probe, group, is_group in _targets(conn):
        window = conn.execute("SELECT state, start FROM watch_windows WHERE target_id = ? "
                              "AND end IS NULL", (target_id,)).fetchone()
        last = conn.execute("SELECT time, latency_ms FROM watch_samples WHERE target_id = ? "
                            "ORDER BY time DESC LIMIT 1", (target_id,)).fetchone()
        (avg,) = conn.execute("SELECT AVG(latency_ms) FROM watch_samples WHERE target_id = ? "
                              "AND time >= ?", (target_id, now - 3600)).fetchone()
        rows.append(TargetStatus(
            name, probe, group, is_group, window[0] if window else "unknown",
            window[1] if window else None, last[0] if last else None,
            last[1] if last else None, avg, uptime(conn, target_id, now - DAY_S, now),
            uptime(conn, target_id, now - WEEK_S, now)))
    return rows


def outages(conn: sqlite3.Connection, since: float = 0.0,
            until: float | None = None) -> list[Outage]:
    """Down windows that overlap [since, until], newest first."""
    end = until if until is not None else float("inf")
    return [Outage(n, p, g, bool(is_g), s, e, last, r) for n, p, g, is_g, s, e, last, r in
            conn.execute(
                "SELECT t.name, t.probe, t.group_name, t.is_group, w.start, w.end, w.last, "
                "w.reason FROM watch_windows w JOIN watch_targets t ON t.id = w.target_id "
                "WHERE w.state = 'down' AND COALESCE(w.end, ?) >= ? AND w.start <= ? "
                "ORDER BY w.start DESC, t.name", (end, since, end))]


def outage_summary(conn: sqlite3.Connection, since: float, until: float) -> list[OutageSummary]:
    """Per target with outages in [since, until]: how many, total and longest downtime
    (clipped to the span)."""
    by_name: dict[str, list[float]] = {}
    info: dict[str, tuple[str, bool]] = {}
    for outage in outages(conn, since, until):
        stop = min(outage.end if outage.end is not None else until, until)
        by_name.setdefault(outage.name, []).append(max(0.0, stop - max(outage.start, since)))
        info[outage.name] = (outage.probe, outage.is_group)
    return [OutageSummary(name, info[name][0], info[name][1], len(spans), sum(spans),
                          max(spans)) for name, spans in sorted(by_name.items())]


def latency_samples(conn: sqlite3.Connection, since: float,
                    name: str | None = None) -> list[tuple[str, float, float | None]]:
    """(target, time, latency_ms or None for a failed probe), oldest first."""
    return [(n, t, ms) for n, t, ms in conn.execute(
        "SELECT t.name, s.time, s.latency_ms FROM watch_samples s "
        "JOIN watch_targets t ON t.id = s.target_id WHERE s.time >= ? AND "
        "(? IS NULL OR t.name = ?) ORDER BY s.time", (since, name, name))]
