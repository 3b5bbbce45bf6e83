"""How both viewers show the connectivity watch: each target's row, each outage's row. Pure."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import tzinfo

from netwarden.store.watch_queries import Outage, TargetStatus
from netwarden.view.labels import format_time

#: What both viewers say about a store without the watch's tables (or a fleet's server).
NO_WATCH_TABLES = ("No connectivity watch here: this store has no watch tables yet (a "
                   "netwarden from before the watch wrote it), or it is a fleet's server, which "
                   "the watch's tables are not shipped to. Add [[watch.target]]s and run "
                   "`netwarden discovery` or `netwarden watch run` (docs/watch.md).")
NO_TARGETS = ("No targets recorded yet: add [[watch.target]]s to the config and run "
              "`netwarden discovery` or `netwarden watch run` (docs/watch.md).")

STATUS_HEADER = ("target", "group", "state", "since", "up day", "up week", "latency",
                 "avg 1h", "probe")
OUTAGE_HEADER = ("target", "start", "end", "lasted", "reason")


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def latency(ms: float | None) -> str:
    if ms is None:
        return "-"
    return f"{ms:.1f} ms" if ms < 1000 else f"{ms / 1000:.2f} s"


def duration(seconds: float) -> str:
    """'42 s', '12 min 5 s', '3 h 20 min', '2 d 4 h'."""
    s = int(round(seconds))
    for unit, size, sub, sub_size in (("d", 86400, "h", 3600), ("h", 3600, "min", 60),
                                      ("min", 60, "s", 1)):
        if s >= size:
            return f"{s // size} {unit} {(s % size) // sub_size} {sub}"
    return f"{s} s"


def status_rows(rows: Sequence[TargetStatus], tz: tzinfo | None) -> list[list[str]]:
    """One row per target and group, in STATUS_HEADER's columns."""
    return [[f"{r.name} (group)" if r.is_group else r.name, r.group, r.state,
             format_time(r.since, tz), percent(r.uptime_day), percent(r.uptime_week),
             "" if r.is_group else latency(r.last_latency_ms),
             "" if r.is_group else latency(r.avg_latency_ms),
             r.probe if not r.is_group else ""] for r in rows]


def outage_rows(outages: Sequence[Outage], now: float, tz: tzinfo | None) -> list[list[str]]:
    """One row per outage, newest first, in OUTAGE_HEADER's columns."""
    return [[f"{o.name} (group)" if o.is_group else o.name, format_time(o.start, tz),
             "still down" if o.end is None else format_time(o.end, tz),
             duration(o.duration(now)), o.reason] for o in outages]
