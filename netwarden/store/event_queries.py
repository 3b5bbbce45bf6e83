"""What the notifier and the viewers read of events: the notifier's cursor reads and the
viewers' event lists (the store's or a fleet server's)."""

from __future__ import annotations

import json
import sqlite3
from typing import NamedTuple

from netwarden.store.read_source import Reader, as_source, marks


class RawEvent(NamedTuple):
    id: int
    time: float
    kind: str
    data: str                 # JSON text, parsed by the caller (tolerating a bad row)


def events_after(conn: sqlite3.Connection, after_id: int, limit: int) -> list[RawEvent]:
    """Up to ``limit`` events with ids above ``after_id``, by id: the notifier's read."""
    return [RawEvent(*row) for row in conn.execute(
        "SELECT id, time, kind, data FROM events WHERE id > ? ORDER BY id LIMIT ?",
        (after_id, limit))]


def last_event_id(conn: sqlite3.Connection, before: float | None = None) -> int:
    """The newest event id (0 when none), or the newest older than ``before`` (epoch s)."""
    if before is None:
        row = conn.execute("SELECT MAX(id) FROM events").fetchone()
    else:
        row = conn.execute("SELECT MAX(id) FROM events WHERE time < ?", (before,)).fetchone()
    return int(row[0] or 0)


class EventRow(NamedTuple):
    id: int
    time: float
    host: str
    kind: str
    fields: dict[str, object]


def view_events(conn: Reader, since: float | None = None,
                until: float | None = None, kinds: tuple[str, ...] = (), path: str = "",
                limit: int = 1000, after_id: int = 0) -> list[EventRow]:
    """Events newest first; `path` keeps those about that executable (its `path` field)."""
    conditions, params = ["ev.id > ?"], [after_id]
    if since is not None:
        conditions.append("ev.time >= ?")
        params.append(since)
    if until is not None:
        conditions.append("ev.time < ?")
        params.append(until)
    if kinds:
        conditions.append(f"ev.kind IN ({marks(len(kinds))})")
        params.extend(kinds)
    if path:
        conditions.append("[[json ev.data path]] = ?")
        params.append(path)
    sql = ("SELECT ev.id, ev.time, [[host ev]], ev.kind, ev.data FROM events ev WHERE "
           + " AND ".join(conditions) + " ORDER BY [[newest ev]] LIMIT ?")
    return [EventRow(i, t, h, k, json.loads(d))
            for i, t, h, k, d in as_source(conn).execute(sql, [*params, limit])]
