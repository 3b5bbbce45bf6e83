"""Read-only, parameterised queries: the only SQL the exporters and viewers run."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from typing import NamedTuple

from netwarden.config import KnownDevice
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
    container: str
    domain: str


#: The fields of `netwarden export`, in order. The first sixteen are a contract (issue #2);
#: fields after them are additions.
EXPORT_FIELDS: tuple[str, ...] = ExportedFlow._fields

_FLOWS_SQL = """
SELECT f.time, e.path, e.sha256, p.name, p.cmdline,
       IFNULL(pe.path, ''), IFNULL(pe.sha256, ''), p.uid,
       f.family, f.protocol, la.addr, f.lport, ra.addr, f.rport, f.sent, f.recv,
       IFNULL(se.path, ''), IFNULL(se.sha256, ''),
       IFNULL(ge.path, ''), IFNULL(ge.sha256, ''), f.ip_protocol, f.netns, p.container,
       IFNULL(d.name, '')
FROM flows f
LEFT JOIN domains d ON d.id = f.domain_id
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


def export_execs(conn: sqlite3.Connection, since: float = 0) -> Iterator[ExportedExec]:
    """Execs recorded in "every executable" mode, oldest first."""
    for row in conn.execute(
            """SELECT x.time, x.pid, e.path, e.sha256, p.name, p.cmdline,
                      IFNULL(pe.path, ''), IFNULL(pe.sha256, ''), p.uid, IFNULL(se.path, ''),
                      p.container
               FROM execs x
               JOIN processes p ON p.id = x.process_id
               JOIN executables e ON e.id = p.exe_id
               LEFT JOIN executables pe ON pe.id = p.parent_exe_id
               LEFT JOIN executables se ON se.id = p.script_id
               WHERE x.time >= ? ORDER BY x.time, x.rowid""", (since,)):
        yield ExportedExec(*row)


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


# ---- LAN discovery (issue 5): devices, presence windows, known devices, passes ----

class DeviceRow(NamedTuple):
    """One device as the viewers and `netwarden devices` show it."""

    mac: str
    ip: str
    ips: list[str]
    vendor: str
    randomized: bool
    device_type: str
    type_reasons: list[str]
    names: list[dict[str, str]]            # {"name", "method"}
    services: list[dict[str, object]]      # {"service", "method", "port", "instance", ...}
    open_ports: list[int] | None           # None: never probed
    interface: str
    first_seen: float
    last_seen: float
    known_name: str                        # from `netwarden known set` ("" if not named)
    trusted: bool
    present: bool                          # its latest presence window is open

    def as_record(self) -> dict[str, object]:
        return self._asdict()


_DEVICES_SQL = """
SELECT d.id, d.mac, d.last_ip, d.vendor, d.randomized, d.device_type, d.type_reasons,
       d.open_ports, d.interface, d.first_seen, d.last_seen,
       IFNULL(k.name, ''), IFNULL(k.trusted, 0),
       EXISTS (SELECT 1 FROM presence p WHERE p.device_id = d.id AND p.end IS NULL),
       k.mac IS NOT NULL
FROM devices d LEFT JOIN known_devices k ON k.mac = d.mac
ORDER BY d.last_seen DESC, d.mac
"""


def devices(conn: sqlite3.Connection,
            config_known: Sequence[KnownDevice] = ()) -> list[DeviceRow]:
    """Every device discovered, most recently seen first.

    A device's known name and trust come from `netwarden known set` (the store) or else from
    ``config_known`` (the config's [discovery] known list).
    """
    from_config = {k.mac: k for k in config_known}
    rows = [_with_config_known(r, from_config) for r in conn.execute(_DEVICES_SQL)]
    ips = _grouped(conn, "SELECT device_id, addr FROM device_addresses "
                         "ORDER BY device_id, last_seen DESC, addr")
    names = _grouped(conn, "SELECT device_id, name, method FROM device_names "
                           "ORDER BY device_id, method, name")
    services = _grouped(conn, "SELECT device_id, service, method, port, instance, detail "
                              "FROM device_services ORDER BY device_id, method, service, port")
    result = []
    for (device_id, mac, ip, vendor, randomized, kind, reasons, ports, interface, first, last,
         known_name, trusted, present) in rows:
        result.append(DeviceRow(
            mac, ip, [r[0] for r in ips.get(device_id, [])], vendor, bool(randomized), kind,
            json.loads(reasons), [{"name": n, "method": m} for n, m in names.get(device_id, [])],
            [dict({"service": s, "method": m, "port": p, "instance": i}, **json.loads(d))
             for s, m, p, i, d in services.get(device_id, [])],
            None if ports is None else json.loads(ports), interface, first, last, known_name,
            bool(trusted), bool(present)))
    return result


def _with_config_known(row: tuple[object, ...],
                       from_config: dict[str, KnownDevice]) -> tuple[object, ...]:
    mac, in_store = str(row[1]), row[14]
    if in_store or mac not in from_config:
        return row[:14]
    known = from_config[mac]
    return row[:11] + (known.name, int(known.trusted)) + row[13:14]


def _grouped(conn: sqlite3.Connection, sql: str) -> dict[int, list[tuple[object, ...]]]:
    groups: dict[int, list[tuple[object, ...]]] = {}
    for row in conn.execute(sql):
        groups.setdefault(row[0], []).append(tuple(row[1:]))
    return groups


class PresenceRow(NamedTuple):
    mac: str
    start: float
    last_seen: float
    end: float | None        # None while the window is open


def presence_windows(conn: sqlite3.Connection, mac: str | None = None, since: float = 0,
                     until: float | None = None) -> list[PresenceRow]:
    """Windows overlapping [since, until], by device and start: 'when was this device here'."""
    sql = ("SELECT d.mac, p.start, p.last_seen, p.end FROM presence p "
           "JOIN devices d ON d.id = p.device_id "
           "WHERE IFNULL(p.end, p.last_seen) >= ? AND p.start <= ? AND (? IS NULL OR d.mac = ?) "
           "ORDER BY d.mac, p.start")
    return [PresenceRow(*r) for r in conn.execute(
        sql, (since, until if until is not None else float("inf"), mac, mac))]


def present_at(conn: sqlite3.Connection, when: float) -> list[str]:
    """MACs of the devices here at ``when`` (an open window counts up to its last sighting)."""
    return [r.mac for r in presence_windows(conn, since=when, until=when)]


class KnownRow(NamedTuple):
    mac: str
    name: str
    trusted: bool


def known_devices(conn: sqlite3.Connection) -> list[KnownRow]:
    return [KnownRow(m, n, bool(t)) for m, n, t in
            conn.execute("SELECT mac, name, trusted FROM known_devices ORDER BY mac")]


class ScanRow(NamedTuple):
    time: float
    interface: str
    subnets: list[str]
    methods: list[dict[str, object]]
    devices: int
    duration: float


def recent_scans(conn: sqlite3.Connection, limit: int = 10) -> list[ScanRow]:
    """The last discovery passes, newest first, with what ran and what could not."""
    return [ScanRow(t, i, json.loads(s), json.loads(m), d, du) for t, i, s, m, d, du in
            conn.execute("SELECT time, interface, subnets, methods, devices, duration "
                         "FROM scans ORDER BY time DESC LIMIT ?", (limit,))]
