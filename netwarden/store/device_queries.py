"""What the viewers and `netwarden devices`/`presence`/`known` read of LAN discovery:
devices, presence windows, known devices and passes.

Devices and presence windows are read from the local store or from a fleet's server
(``read_source``: there each host's devices are its own, and ``host`` says whose); known
devices and discovery passes are read locally (the commands that show them run on the
host)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from netwarden.model.discovery import KnownDevice
from netwarden.store.read_source import Reader, ReadSource, as_source, marks


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
    host: str = ""                         # on a fleet's server: the host that saw it

    def as_record(self) -> dict[str, object]:
        return _record(self._asdict())


_DEVICES_SQL = """
SELECT [[ids d id]], d.mac, d.last_ip, d.vendor, d.randomized, d.device_type, d.type_reasons,
       d.open_ports, d.interface, d.first_seen, d.last_seen,
       COALESCE(k.name, ''), COALESCE(k.trusted, 0),
       EXISTS (SELECT 1 FROM [[current presence]] p
               WHERE p.device_id = d.id[[same p d]] AND p.[[q end]] IS NULL),
       k.mac IS NOT NULL, [[fleethost d]]
FROM [[current devices]] d LEFT JOIN [[current known_devices]] k ON k.mac = d.mac[[same k d]]
ORDER BY d.last_seen DESC, d.mac
"""


def devices(conn: Reader, config_known: Sequence[KnownDevice] = ()) -> list[DeviceRow]:
    """Every device discovered, most recently seen first.

    A device's known name and trust come from `netwarden known set` (the store) or else from
    ``config_known`` (the config's [discovery] known list).
    """
    source = as_source(conn)
    key = 3 if source.remote else 1            # a device's id: (host, source_id, id) there
    from_config = {k.mac: k for k in config_known}
    ips = _grouped(source, key, "SELECT [[ids a device_id]], a.addr "
                                "FROM [[current device_addresses]] a "
                                "ORDER BY a.last_seen DESC, a.addr")
    names = _grouped(source, key, "SELECT [[ids n device_id]], n.name, n.method "
                                  "FROM [[current device_names]] n ORDER BY n.method, n.name")
    services = _grouped(source, key,
                        "SELECT [[ids s device_id]], s.service, s.method, s.port, s.instance, "
                        "s.detail FROM [[current device_services]] s "
                        "ORDER BY s.method, s.service, s.port")
    result = []
    for row in source.execute(_DEVICES_SQL).fetchall():
        device_id, fields = tuple(row[:key]), _with_config_known(row[key:], from_config)
        (mac, ip, vendor, randomized, kind, reasons, ports, interface, first, last,
         known_name, trusted, present, host) = fields
        result.append(DeviceRow(
            mac, ip, [r[0] for r in ips.get(device_id, [])], vendor, bool(randomized), kind,
            json.loads(reasons), [{"name": n, "method": m} for n, m in names.get(device_id, [])],
            [dict({"service": s, "method": m, "port": p, "instance": i}, **json.loads(d))
             for s, m, p, i, d in services.get(device_id, [])],
            None if ports is None else json.loads(ports), interface, first, last, known_name,
            bool(trusted), bool(present), host))
    return result


def _with_config_known(fields: tuple[object, ...],
                       from_config: dict[str, KnownDevice]) -> tuple[object, ...]:
    """A device's fields (mac first, ``in_store`` second to last) with the known name and
    trust the config gives when the store has none, ``in_store`` left out."""
    mac, in_store, host = str(fields[0]), fields[13], fields[14]
    if in_store or mac not in from_config:
        return fields[:13] + (host,)
    known = from_config[mac]
    return fields[:10] + (known.name, int(known.trusted)) + fields[12:13] + (host,)


def _grouped(source: ReadSource, key: int, sql: str) -> dict[tuple[object, ...],
                                                             list[tuple[object, ...]]]:
    """The query's rows by their first ``key`` columns (a device's id)."""
    groups: dict[tuple[object, ...], list[tuple[object, ...]]] = {}
    for row in source.execute(sql).fetchall():
        groups.setdefault(tuple(row[:key]), []).append(tuple(row[key:]))
    return groups


class PresenceRow(NamedTuple):
    mac: str
    start: float
    last_seen: float
    end: float | None        # None while the window is open
    host: str = ""           # on a fleet's server: the host that saw it

    def as_record(self) -> dict[str, object]:
        return _record(self._asdict())


def _record(fields: dict[str, object]) -> dict[str, object]:
    """A row as JSON output shows it: ``host`` only where there are several (a server)."""
    if not fields.get("host"):
        fields.pop("host", None)
    return fields


def presence_windows(conn: Reader, mac: str | None = None, since: float = 0,
                     until: float | None = None) -> list[PresenceRow]:
    """Windows overlapping [since, until], by device and start: 'when was this device here'."""
    sql = ("SELECT d.mac, p.[[q start]], p.last_seen, p.[[q end]], [[fleethost d]] "
           "FROM [[current presence]] p JOIN [[current devices]] d "
           "ON d.id = p.device_id[[same p d]] WHERE COALESCE(p.[[q end]], p.last_seen) >= ?")
    params: list[object] = [since]
    if until is not None:
        sql += " AND p.[[q start]] <= ?"
        params.append(until)
    if mac is not None:
        sql += " AND d.mac = ?"
        params.append(mac)
    return [PresenceRow(*r) for r in as_source(conn).execute(
        sql + " ORDER BY d.mac, [[fleethost d]], p.[[q start]]", params).fetchall()]


def present_at(conn: Reader, when: float) -> list[str]:
    """MACs of the devices here at ``when`` (an open window counts up to its last sighting)."""
    return [r.mac for r in presence_windows(conn, since=when, until=when)]


class KnownRow(NamedTuple):
    mac: str
    name: str
    trusted: bool


_DEVICE_TABLES = ("devices", "device_addresses", "device_names", "device_services",
                  "presence", "known_devices")


def has_discovery_tables(conn: Reader) -> bool:
    """False for a database written before LAN discovery existed (no migration 2 yet); a
    fleet's server has them from its first schema version."""
    if as_source(conn).remote:
        return True
    (count,) = conn.execute(
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name IN "
        f"({marks(len(_DEVICE_TABLES))})", _DEVICE_TABLES).fetchone()
    return int(count) == len(_DEVICE_TABLES)


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
