"""Read-only, parameterised queries: the only SQL the exporters and viewers run."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import NamedTuple

from netwarden.model import family_label

class ExportedFlow(NamedTuple):
    time: int
    exe: str
    sha256: str
    name: str
    cmdline: str
    parent_exe: str
    parent_sha256: str
    uid: int
    family: str
    protocol: str
    laddr: str
    lport: int
    raddr: str
    rport: int
    sent: int
    recv: int
    script: str
    script_sha256: str
    grandparent_exe: str
    grandparent_sha256: str
    ip_protocol: int
    netns: int


#: The fields of `netwarden export`, in order. The first sixteen are a contract (issue #2);
#: fields after them are additions.
EXPORT_FIELDS: tuple[str, ...] = ExportedFlow._fields

_FLOWS_SQL = """
SELECT f.time, e.path, e.sha256, p.name, p.cmdline,
       IFNULL(pe.path, ''), IFNULL(pe.sha256, ''), p.uid,
       f.family, f.protocol, la.addr, f.lport, ra.addr, f.rport, f.sent, f.recv,
       IFNULL(se.path, ''), IFNULL(se.sha256, ''),
       IFNULL(ge.path, ''), IFNULL(ge.sha256, ''), f.ip_protocol, f.netns
FROM flows f
JOIN processes p ON p.id = f.process_id
JOIN executables e ON e.id = p.exe_id
LEFT JOIN executables pe ON pe.id = p.parent_exe_id
LEFT JOIN executables ge ON ge.id = p.grandparent_exe_id
LEFT JOIN executables se ON se.id = p.script_id
JOIN addresses la ON la.id = f.laddr_id
JOIN addresses ra ON ra.id = f.raddr_id
WHERE f.time >= ?
ORDER BY f.time, f.rowid
"""


def export_flows(conn: sqlite3.Connection, since: int = 0) -> Iterator[ExportedFlow]:
    for row in conn.execute(_FLOWS_SQL, (since,)):
        values = list(row)
        values[8] = family_label(values[8])
        yield ExportedFlow(*values)


class ExportedEvent(NamedTuple):
    time: float
    kind: str
    fields: dict[str, object]

    def as_record(self) -> dict[str, object]:
        record: dict[str, object] = {"time": self.time, "kind": self.kind}
        record.update(self.fields)
        return record


def export_events(conn: sqlite3.Connection, since: float = 0,
                  after_id: int = 0) -> Iterator[tuple[int, ExportedEvent]]:
    """Events by id order (the notifier's cursor is the id)."""
    for event_id, time, kind, data in conn.execute(
            "SELECT id, time, kind, data FROM events WHERE time >= ? AND id > ? ORDER BY id",
            (since, after_id)):
        yield event_id, ExportedEvent(time, kind, json.loads(data))


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


class HealthRow(NamedTuple):
    time: int
    source: str
    counter: str
    delta: int


def health_rows(conn: sqlite3.Connection, since: float = 0) -> Iterator[HealthRow]:
    for row in conn.execute("SELECT time, source, counter, delta FROM health WHERE time >= ? "
                            "ORDER BY time, rowid", (since,)):
        yield HealthRow(*row)


class HealthTotal(NamedTuple):
    source: str
    counter: str
    total: int


def health_totals(conn: sqlite3.Connection, since: int = 0) -> list[HealthTotal]:
    return [HealthTotal(*r) for r in conn.execute(
        "SELECT source, counter, SUM(delta) FROM health WHERE time >= ? "
        "GROUP BY source, counter ORDER BY source, counter", (since,))]
