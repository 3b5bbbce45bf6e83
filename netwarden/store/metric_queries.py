"""What /metrics reads of the local store: the rows added since a cursor, and a few counts.

Every read of a growing table is a range of its integer primary key (``rowid``, which is the
``id`` column since migration 4), so a scrape reads only the rows written since the last one,
however big the store, and never the rows retention is pruning at the other end.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from netwarden.store.device_queries import has_discovery_tables

#: The tables read by cursor, each by its integer primary key.
CURSOR_TABLES = ("flows", "health", "events")


class Cursors(NamedTuple):
    """The last row of each growing table (0: none)."""

    flows: int
    health: int
    events: int


def newest_rows(conn: sqlite3.Connection) -> Cursors:
    # One subquery each: SQLite answers a lone MAX(rowid) from the table's b-tree at once.
    sql = "SELECT " + ", ".join(f"(SELECT MAX(rowid) FROM {t})" for t in CURSOR_TABLES)
    return Cursors(*(int(v or 0) for v in conn.execute(sql).fetchone()))


def store_id(conn: sqlite3.Connection) -> str:
    """The store's random source_id ("" before migration 4): a new one means a new file,
    whose row numbers start again."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                    "AND name = 'store_meta'").fetchone() is None:
        return ""
    row = conn.execute("SELECT value FROM store_meta WHERE key = 'source_id'").fetchone()
    return "" if row is None else str(row[0])


# GROUP BY +process_id: grouping through the (process_id, time) index would walk all of it;
# the unary + makes SQLite read the rowid range and sort the few groups instead.
FLOWS_SQL = ("SELECT process_id, SUM(sent), SUM(recv) FROM flows WHERE rowid > ? AND rowid <= ? "
             "GROUP BY +process_id")
HEALTH_SQL = ("SELECT source, counter, SUM(delta) FROM health WHERE rowid > ? AND rowid <= ? "
              "GROUP BY source, counter")
# detail: a sensor_error's component; for a port scan's first report (a long scan reports
# again as it goes on, and counts once), the probe kind most of its ports saw.
EVENTS_SQL = (
    "SELECT kind, IFNULL(CASE WHEN kind = 'sensor_error' THEN "
    "json_extract(data, '$.component') WHEN kind = 'port_scan' AND "
    "json_extract(data, '$.report') = 1 THEN json_extract(data, '$.probe') END, '') "
    "AS detail, "
    "IFNULL(CASE WHEN kind = 'sensor_error' THEN json_extract(data, '$.direction') END, '') "
    "AS direction, COUNT(*) FROM events WHERE id > ? AND id <= ? "
    "GROUP BY kind, detail, direction")
#: What each scrape runs over the growing tables, each given (after, upto).
RANGE_QUERIES = (FLOWS_SQL, HEALTH_SQL, EVENTS_SQL)


class ProcessBytes(NamedTuple):
    process_id: int
    sent: int
    recv: int


def flow_bytes_between(conn: sqlite3.Connection, after: int, upto: int) -> list[ProcessBytes]:
    """Bytes per process in the flow rows (after, upto]."""
    return [ProcessBytes(*row) for row in conn.execute(FLOWS_SQL, (after, upto))]


def executable_paths(conn: sqlite3.Connection,
                     process_ids: Sequence[int]) -> dict[int, str]:
    """Each process id's executable path (the `exe` the viewers group by)."""
    paths: dict[int, str] = {}
    ids = list(process_ids)
    for start in range(0, len(ids), 500):    # under SQLite's parameter limit
        chunk = ids[start:start + 500]
        paths.update(conn.execute(
            "SELECT p.id, e.path FROM processes p JOIN executables e ON e.id = p.exe_id "
            f"WHERE p.id IN ({', '.join('?' * len(chunk))})", chunk).fetchall())
    return paths


class HealthMove(NamedTuple):
    source: str
    counter: str
    delta: int


def health_between(conn: sqlite3.Connection, after: int, upto: int) -> list[HealthMove]:
    """The health deltas in rows (after, upto], summed per source and counter."""
    return [HealthMove(*row) for row in conn.execute(HEALTH_SQL, (after, upto))]


def health_sums(conn: sqlite3.Connection, source: str,
                counters: Sequence[str], upto: int) -> dict[str, int]:
    """The sum of every retained delta of ``source``'s ``counters`` up to row ``upto``: the
    current value of a counter the sensor writes as moves of a level (the sink's lag)."""
    rows = conn.execute(
        "SELECT counter, SUM(delta) FROM health WHERE rowid <= ? AND source = ? AND counter IN "
        f"({', '.join('?' * len(counters))}) GROUP BY counter", (upto, source, *counters))
    return {str(counter): int(total) for counter, total in rows}


class EventCount(NamedTuple):
    kind: str
    detail: str          # a sensor_error's part of the sensor; a new port scan's probe kind
    direction: str       # a silent-zero alarm's direction ("" otherwise)
    count: int


def events_between(conn: sqlite3.Connection, after: int, upto: int) -> list[EventCount]:
    """Events in rows (after, upto] per kind, sensor errors per component and direction,
    port scans' first reports per probe kind."""
    return [EventCount(*row) for row in conn.execute(EVENTS_SQL, (after, upto))]


class DeviceCounts(NamedTuple):
    recorded: int        # every device discovery ever recorded (and retention kept)
    present: int         # those whose latest presence window is open: here now


def device_counts(conn: sqlite3.Connection) -> DeviceCounts | None:
    """None for a store without discovery's tables."""
    if not has_discovery_tables(conn):
        return None
    # EXISTS per device goes through presence_device_start, as the viewers' device list does.
    recorded, present = conn.execute(
        "SELECT COUNT(*), IFNULL(SUM(EXISTS (SELECT 1 FROM presence p WHERE p.device_id = d.id "
        "AND p.end IS NULL)), 0) FROM devices d").fetchone()
    return DeviceCounts(int(recorded), int(present))
