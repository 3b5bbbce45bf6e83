"""Rollups: flow bytes summed per period (15 minutes to a UTC day), kept beside the raw rows.

A rollup row holds, for one period start (``time``), one host and one value of its key
column, the number of raw rows summed, their bytes, and the first and last window start among
them, so any answer a viewer reads from raw rows (sums, first and last seen) can be read from
rollups too, exactly. Three families, one key each (docs/rollups.md says why):

- ``process`` (``process_id``): every grouping and filter through the process: executable,
  name, sha256, parent, user, container; and host;
- ``domain`` (``domain_id``, 0 for flows without a name) and ``raddr`` (``raddr_id``).

Ports have none: ephemeral ports make a port-keyed rollup nearly as large as the raw table.
A view that groups or filters on dimensions of two families (an executable's domains) reads
raw rows.

A view's window [since, until) is read as raw rows for the partial periods at its edges and
rollups for the whole periods inside, largest first: days, 6 hours, hours, 15 minutes (the
process family has all four, the others days and hours; :func:`plan`). The local writer keeps
the rollups in the transaction that writes the rows; a PostgreSQL server keeps its own from
the rows it really inserts (:mod:`netwarden.store.remote_rollups`).
"""

from __future__ import annotations

import logging
import sqlite3
import time as clock
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

QUARTER_HOUR = 900
HOUR = 3600
SIX_HOURS = 6 * HOUR
DAY = 86400
_PERIOD_NAMES = {QUARTER_HOUR: "15m", HOUR: "hour", SIX_HOURS: "6h", DAY: "day"}


@dataclass(frozen=True)
class Family:
    """Rollups keyed by one flow column: what they sum by and the flow key it serves."""

    name: str
    column: str          # the rollup's key column (same name as the flow column)
    raw: str             # the value of that column from a raw ``flows`` row
    flow_key: str        # the Dimension.flow_key (traffic_queries) this family answers
    # Largest first, each a multiple of the next. The process family (the default screens)
    # has the charts' bins too: a day's chart is drawn in 15-minute bins and a month's in
    # 6-hour ones (view/ranges.py's auto_bucket), each then read from rollups of its own size.
    periods: tuple[int, ...] = (DAY, HOUR)


FAMILIES: tuple[Family, ...] = (
    Family("process", "process_id", "process_id", "f.process_id",
           (DAY, SIX_HOURS, HOUR, QUARTER_HOUR)),
    Family("domain", "domain_id", "COALESCE(domain_id, 0)", "COALESCE(f.domain_id,0)"),
    Family("raddr", "raddr_id", "raddr_id", "f.raddr_id"),
)
#: Keys every family has: the host (a local store's ``host_id``, a server's ``host``).
HOST_KEYS = frozenset({"f.host_id", "f.host"})


@dataclass(frozen=True)
class Rollup:
    family: Family
    period: int          # one of _PERIOD_NAMES; a period starts at a multiple of it (UTC)

    @property
    def table(self) -> str:
        return f"rollup_{self.family.name}_{_PERIOD_NAMES[self.period]}"


#: Largest period first: a plan takes whole days before whole hours.
ROLLUPS: tuple[Rollup, ...] = tuple(Rollup(f, p) for f in FAMILIES for p in f.periods)


def rollups_of(family: Family) -> tuple[Rollup, ...]:
    return tuple(r for r in ROLLUPS if r.family == family)


def covering_family(flow_keys: Iterable[str]) -> Family | None:
    """The family whose rollups can answer a view keyed and filtered by ``flow_keys``."""
    needed = set(flow_keys) - HOST_KEYS
    for family in FAMILIES:
        if needed <= {family.flow_key}:
            return family
    return None


# ---- the local store ----

def local_tables() -> tuple[str, ...]:
    """Migration 7's statements: the rollup tables, empty (the build fills them)."""
    return tuple(
        f"CREATE TABLE {r.table} (\n"
        "    time INTEGER NOT NULL,\n"
        "    host_id INTEGER NOT NULL,\n"
        f"    {r.family.column} INTEGER NOT NULL,\n"
        "    flow_rows INTEGER NOT NULL,\n"
        "    sent INTEGER NOT NULL,\n"
        "    recv INTEGER NOT NULL,\n"
        "    first_time INTEGER NOT NULL,\n"
        "    last_time INTEGER NOT NULL,\n"
        f"    PRIMARY KEY (time, host_id, {r.family.column})) WITHOUT ROWID"
        for r in ROLLUPS)


def _upsert(rollup: Rollup) -> str:
    """Adds one row's (or a group's) figures to a rollup row, making it if needed. An
    INSERT ... SELECT here must have a WHERE (SQLite's upsert parsing ambiguity)."""
    column = rollup.family.column
    return (f"INSERT INTO {rollup.table} (time, host_id, {column}, flow_rows, sent, recv, "
            "first_time, last_time) {rows} "
            f"ON CONFLICT (time, host_id, {column}) DO UPDATE SET "
            f"flow_rows = {rollup.table}.flow_rows + excluded.flow_rows, "
            f"sent = {rollup.table}.sent + excluded.sent, "
            f"recv = {rollup.table}.recv + excluded.recv, "
            f"first_time = MIN({rollup.table}.first_time, excluded.first_time), "
            f"last_time = MAX({rollup.table}.last_time, excluded.last_time)")


def _grouped_flows(rollup: Rollup, where: str, sign: str = "") -> str:
    """SELECT of a rollup's rows from the raw flows matching ``where``."""
    return (f"SELECT time - time % {rollup.period}, host_id, {rollup.family.raw}, "
            f"{sign}COUNT(*), {sign}SUM(sent), {sign}SUM(recv), MIN(time), MAX(time) "
            f"FROM flows WHERE {where} GROUP BY 1, 2, 3")


class FlowFigures:
    """One write window's rollup rows, summed in memory before a single upsert each."""

    def __init__(self) -> None:
        self._rows: dict[Rollup, dict[tuple[int, int, int], list[int]]] = \
            {r: {} for r in ROLLUPS}

    def add(self, time: int, host_id: int, keys: dict[str, int], sent: int,
            recv: int) -> None:
        """``keys``: the row's value of each family's column (domain: 0 for none)."""
        for rollup, rows in self._rows.items():
            key = (time - time % rollup.period, host_id, keys[rollup.family.column])
            figures = rows.get(key)
            if figures is None:
                rows[key] = [1, sent, recv, time, time]
            else:
                figures[0] += 1
                figures[1] += sent
                figures[2] += recv
                figures[3] = min(figures[3], time)
                figures[4] = max(figures[4], time)

    def write(self, conn: sqlite3.Connection) -> None:
        """Adds them to the store's rollups (inside the caller's transaction)."""
        for rollup, rows in self._rows.items():
            if rows:
                conn.executemany(_upsert(rollup).format(rows="VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                                 [(*key, *figures) for key, figures in rows.items()])


def add_flows(conn: sqlite3.Connection, where: str, params: Sequence[object]) -> None:
    """Adds the flows matching ``where`` to the rollups (rows inserted past the writer, as
    a bulk load does; inside the caller's transaction)."""
    for rollup in ROLLUPS:
        conn.execute(_upsert(rollup).format(rows=_grouped_flows(rollup, where)), tuple(params))


def subtract_flows(conn: sqlite3.Connection, where: str, params: Sequence[object]) -> None:
    """Takes the flows matching ``where`` out of the rollups (before retention deletes them):
    their rows and bytes are subtracted, and a rollup row left with no raw row goes.

    A row's first and last time are not narrowed; retention deletes whole UTC days
    (SqliteWriter.prune_before), so no row outlives a partial prune for long.
    """
    for rollup in ROLLUPS:
        select = _grouped_flows(rollup, where, sign="-")
        conn.execute(_upsert(rollup).format(rows=select), tuple(params))
        conn.execute(f"DELETE FROM {rollup.table} WHERE flow_rows <= 0")


#: How often building the rollups of an existing store says how far it is.
PROGRESS_EVERY_S = 5.0


def build_local(conn: sqlite3.Connection,
                progress: Callable[[str], None] = log.warning) -> None:
    """Fills empty rollups from the flows a store already holds (migration 7), a UTC day of
    rows at a time through the time index, saying how far it is every few seconds: on a
    10M-row store this takes a while and must not look hung."""
    low, high = conn.execute("SELECT (SELECT MIN(time) FROM flows), "
                             "(SELECT MAX(time) FROM flows)").fetchone()
    if low is None:
        return
    first_day, last_day = low - low % DAY, high - high % DAY
    started = said = clock.monotonic()
    days = (last_day - first_day) // DAY + 1
    for number, day in enumerate(range(first_day, last_day + 1, DAY), 1):
        for rollup in ROLLUPS:
            conn.execute(f"INSERT INTO {rollup.table} "
                         + _grouped_flows(rollup, "time >= ? AND time < ?"),
                         (day, day + DAY))
        now = clock.monotonic()
        if now - said >= PROGRESS_EVERY_S or number == days:
            said = now
            progress(f"building rollups: day {number} of {days} "
                     f"({now - started:.0f} s so far)")


# ---- reading: how a window decomposes ----

@dataclass(frozen=True)
class Part:
    """Rows of [since, until) (None: open) read from ``rollup``, or raw rows (None)."""

    rollup: Rollup | None
    since: int | None
    until: int | None


def _nonempty(since: int | None, until: int | None) -> bool:
    return since is None or until is None or since < until


def plan(since: int | None, until: int | None, rollups: Sequence[Rollup]) -> list[Part]:
    """[since, until) as raw parts at the edges and rollup parts for whole periods.

    ``rollups``: those allowed (largest period first; each period a multiple of the next).
    An open end needs no raw part: the writer keeps the period being written in its rollup
    row, so the newest (or oldest) period's row holds every raw row of it.
    """
    if not rollups:
        return [Part(None, since, until)] if _nonempty(since, until) else []
    period = rollups[0].period
    start = None if since is None else -(-since // period) * period
    end = None if until is None else until // period * period
    if start is not None and end is not None and start >= end:
        return plan(since, until, rollups[1:])
    parts = []
    if since is not None and start is not None and since < start:
        parts += plan(since, start, rollups[1:])
    parts.append(Part(rollups[0], start, end))
    if until is not None and end is not None and end < until:
        parts += plan(end, until, rollups[1:])
    return parts


def usable(family: Family, origin: int | None = None,
           bucket_s: int | None = None) -> list[Rollup]:
    """The family's rollups a query may read: all of them for totals; for a series with
    buckets of ``bucket_s`` counted from ``origin``, those whose periods never straddle a
    bucket boundary (the bucket a multiple of the period, the origin aligned to it)."""
    if origin is None or bucket_s is None:
        return list(rollups_of(family))
    return [r for r in rollups_of(family)
            if bucket_s % r.period == 0 and origin % r.period == 0]
