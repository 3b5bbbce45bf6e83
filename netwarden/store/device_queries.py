"""What the viewers and `netwarden devices`/`presence`/`known` read of LAN discovery:
devices, presence windows, known devices and passes (from the local store)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import NamedTuple

from netwarden.model.discovery import KnownDevice
from netwarden.store.read_source import Reader, as_source, marks


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


_DEVICE_TABLES = ("devices", "device_addresses", "device_names", "device_services",
                  "presence", "known_devices")


def has_discovery_tables(conn: Reader) -> bool:
    """False for a database written before LAN discovery existed (no migration 2 yet), and
    for a fleet's server, whose devices the viewers do not read yet."""
    if as_source(conn).remote:
        return False
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
