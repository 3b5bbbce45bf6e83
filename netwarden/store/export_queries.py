"""What `netwarden export`, `events`, `execs` and `health` print: read from the local store
or, with ``--db URL``, from the fleet's server (queries written once; :mod:`read_source`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import NamedTuple

from netwarden.model import family_label
from netwarden.store.read_source import ReadSource


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
    container: str
    domain: str


#: The fields of `netwarden export`, in order. The first sixteen are a contract (issue #2);
#: fields after them are additions. From a server, each record also has `host`.
EXPORT_FIELDS: tuple[str, ...] = ExportedFlow._fields

FLOWS_SQL = """
SELECT f.time, e.path, e.sha256, p.name, p.cmdline,
       COALESCE(pe.path, ''), COALESCE(pe.sha256, ''), p.uid,
       f.family, f.protocol, la.addr, f.lport, ra.addr, f.rport, f.sent, f.recv,
       COALESCE(se.path, ''), COALESCE(se.sha256, ''),
       COALESCE(ge.path, ''), COALESCE(ge.sha256, ''), f.ip_protocol, f.netns, p.container,
       COALESCE(d.name, '')
FROM flows f
LEFT JOIN domains d ON d.id = f.domain_id[[same d f]]
JOIN processes p ON p.id = f.process_id[[same p f]]
JOIN [[current executables]] e ON e.id = p.exe_id[[same e p]]
LEFT JOIN [[current executables]] pe ON pe.id = p.parent_exe_id[[same pe p]]
LEFT JOIN [[current executables]] ge ON ge.id = p.grandparent_exe_id[[same ge p]]
LEFT JOIN [[current executables]] se ON se.id = p.script_id[[same se p]]
JOIN addresses la ON la.id = f.laddr_id[[same la f]]
JOIN addresses ra ON ra.id = f.raddr_id[[same ra f]]
WHERE f.time >= ?
ORDER BY f.time, [[seq f]]
"""


def export_flows(source: ReadSource, since: int = 0) -> Iterator[tuple[ExportedFlow, str]]:
    """Flow rows by time, each with its host (the server's; locally the store's own)."""
    sql = FLOWS_SQL.replace("COALESCE(d.name, '')", "COALESCE(d.name, ''), [[host f]]")
    for row in source.rows(sql, (since,)):
        values = list(row[:-1])
        values[8] = family_label(values[8])
        yield ExportedFlow(*values), str(row[-1])


class ExportedExec(NamedTuple):
    time: float
    pid: int
    exe: str
    sha256: str
    name: str
    cmdline: str
    parent_exe: str
    parent_sha256: str
    uid: int
    script: str
    container: str


def export_execs(source: ReadSource, since: float = 0) -> Iterator[tuple[ExportedExec, str]]:
    """Execs recorded in "every executable" mode, oldest first."""
    for row in source.rows(
            """SELECT x.time, x.pid, e.path, e.sha256, p.name, p.cmdline,
                      COALESCE(pe.path, ''), COALESCE(pe.sha256, ''), p.uid,
                      COALESCE(se.path, ''), p.container, [[host x]]
               FROM execs x
               JOIN processes p ON p.id = x.process_id[[same p x]]
               JOIN [[current executables]] e ON e.id = p.exe_id[[same e p]]
               LEFT JOIN [[current executables]] pe ON pe.id = p.parent_exe_id[[same pe p]]
               LEFT JOIN [[current executables]] se ON se.id = p.script_id[[same se p]]
               WHERE x.time >= ? ORDER BY x.time, [[seq x]]""", (since,)):
        yield ExportedExec(*row[:-1]), str(row[-1])


class ExportedEvent(NamedTuple):
    time: float
    kind: str
    fields: dict[str, object]

    def as_record(self) -> dict[str, object]:
        record: dict[str, object] = {"time": self.time, "kind": self.kind}
        record.update(self.fields)
        return record


def export_events(source: ReadSource, since: float = 0) -> Iterator[tuple[ExportedEvent, str]]:
    """Events in the order they were recorded (per host, on a server), with their host."""
    for time, kind, data, host in source.rows(
            "SELECT ev.time, ev.kind, ev.data, [[host ev]] FROM events ev WHERE ev.time >= ? "
            "ORDER BY [[seq ev]]", (since,)):
        yield ExportedEvent(time, kind, json.loads(data)), str(host)


class HealthRow(NamedTuple):
    time: int
    source: str
    counter: str
    delta: int


def health_rows(source: ReadSource, since: float = 0) -> Iterator[tuple[HealthRow, str]]:
    for row in source.rows("SELECT h.time, h.source, h.counter, h.delta, [[host h]] FROM "
                           "health h WHERE h.time >= ? ORDER BY h.time, [[seq h]]", (since,)):
        yield HealthRow(*row[:-1]), str(row[-1])
