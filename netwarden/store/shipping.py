"""What the remote sink ships, and reading it from the local SQLite store past a cursor.

Every table the viewers and the notifier read is shipped. Each row is named for good by
(host, source_id, sequence): ``host`` is decided by the server (the login role), ``source_id``
is the store's random id (``store_meta``), and the sequence is a column VACUUM cannot
renumber: the AUTOINCREMENT or never-reused ``id`` of an append-only table, or, for a table
whose rows change, the ``seq`` that every insert and update takes from ``ship_counter``
(schema migration 4). So each change of a mutable row ships as a new version, and the server
only ever receives inserts.

The columns are not listed here: they are read from the SQLite schema itself
(:func:`local_columns`), so the remote tables cannot drift from the local ones.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True)
class ShippedTable:
    name: str
    sequence: str                  # the column naming a row (or a version) for good
    versioned: bool = False        # rows change: every version ships (``seq``)
    key: tuple[str, ...] = ()      # versioned: what one logical row is (latest version wins)
    time: str = ""                 # the row's time column (epoch s), for "seconds behind"
    partitioned: bool = False      # on the server, partitioned by month of ``time``

    @property
    def remote_key(self) -> tuple[str, ...]:
        """What names a row on the server. A partitioned table's key must hold the
        partition column (both servers insist), which changes nothing: a resend has the
        same time."""
        key = ("host", "source_id", self.sequence)
        return (*key, self.time) if self.partitioned else key


#: In the order a batch ships them: what a row refers to goes before it.
SHIPPED_TABLES: tuple[ShippedTable, ...] = (
    ShippedTable("hosts", "id"),
    ShippedTable("executables", "seq", versioned=True, key=("id",)),
    ShippedTable("processes", "id", time="first_seen"),
    ShippedTable("addresses", "id"),
    ShippedTable("domains", "id"),
    ShippedTable("flows", "id", time="time", partitioned=True),
    ShippedTable("events", "id", time="time"),
    ShippedTable("health", "id", time="time"),
    ShippedTable("execs", "id", time="time"),
    ShippedTable("devices", "seq", versioned=True, key=("id",)),
    ShippedTable("device_addresses", "seq", versioned=True, key=("device_id", "addr")),
    ShippedTable("device_names", "seq", versioned=True, key=("device_id", "name", "method")),
    ShippedTable("device_services", "seq", versioned=True,
                 key=("device_id", "method", "service", "port", "instance")),
    ShippedTable("presence", "seq", versioned=True, key=("id",)),
    ShippedTable("scans", "id", time="time"),
    ShippedTable("known_devices", "seq", versioned=True, key=("mac",)),
    ShippedTable("known_devices_removed", "seq", time="removed"),
)

SHIPPED_BY_NAME = {t.name: t for t in SHIPPED_TABLES}


class Column(NamedTuple):
    name: str
    kind: str          # INTEGER, REAL or TEXT (SQLite's declared type)
    not_null: bool


def local_columns(conn: sqlite3.Connection, table: str) -> tuple[Column, ...]:
    """``table``'s columns as SQLite declares them, in order."""
    columns = tuple(Column(name, kind.upper(), bool(not_null)) for
                    _cid, name, kind, not_null, _default, _pk in
                    conn.execute(f"PRAGMA table_info({table})"))  # fixed table names
    if not columns:
        raise KeyError(f"no table {table!r} in this store")
    return columns


def source_id(conn: sqlite3.Connection) -> str:
    """The store's random id, made by migration 4 when the store was created or upgraded."""
    row = conn.execute("SELECT value FROM store_meta WHERE key = 'source_id'").fetchone()
    if row is None:
        raise LookupError("this store has no source_id (schema older than version 4)")
    return str(row[0])


def rows_after(conn: sqlite3.Connection, table: ShippedTable, columns: Sequence[str],
               after: int, limit: int, lead: Sequence[object] = ()) -> list[tuple[object, ...]]:
    """Up to ``limit`` rows whose sequence is above ``after``, in sequence order, each
    starting with the values ``lead`` (SQLite builds each row once, with them)."""
    names = ", ".join(["?"] * len(lead) + list(columns))
    return conn.execute(
        f"SELECT {names} FROM {table.name} WHERE {table.sequence} > ? "  # fixed names
        f"ORDER BY {table.sequence} LIMIT ?", (*lead, after, limit)).fetchall()


def backlog(conn: sqlite3.Connection, table: ShippedTable, after: int) -> tuple[int, float | None]:
    """Rows not yet shipped (sequence above ``after``), and the oldest one's time if known."""
    count = conn.execute(f"SELECT COUNT(*) FROM {table.name} "  # fixed names
                         f"WHERE {table.sequence} > ?", (after,)).fetchone()[0]
    oldest = None
    if count and table.time:
        oldest = conn.execute(f"SELECT {table.time} FROM {table.name} "  # fixed names
                              f"WHERE {table.sequence} > ? ORDER BY {table.sequence} LIMIT 1",
                              (after,)).fetchone()[0]
    return int(count), None if oldest is None else float(oldest)


def total_backlog(conn: sqlite3.Connection,
                  shipped: Mapping[str, int]) -> tuple[int, float | None]:
    """Rows of every shipped table past the cursors ``shipped`` (table -> sequence), and
    the oldest one's time (None when nothing with a time waits)."""
    rows, oldest = 0, None
    for table in SHIPPED_TABLES:
        count, first = backlog(conn, table, shipped.get(table.name, 0))
        rows += count
        if first is not None and (oldest is None or first < oldest):
            oldest = first
    return rows, oldest
