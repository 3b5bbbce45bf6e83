"""LAN discovery's writer: devices, sightings, presence windows and events, in the sensor's DB.

Its own connection to the same SQLite file (WAL: two writers take turns; BEGIN IMMEDIATE
with a busy timeout). Each pass is one transaction: a crash never leaves a device without its
events. ``new_device`` is written for a MAC this host never recorded that nobody named;
``device_changed`` when a device's open TCP ports differ from the last pass that probed it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from pathlib import Path

from netwarden.model import Event, EventKind, HealthSample
from netwarden.model.baseline import DriftKind, Fact, Mode, device_key, device_port_key
from netwarden.model.discovery import Device, KnownDevice, MethodState, ScanResult
from netwarden.model.presence import Action, Window, on_sighting
from netwarden.store.baseline import BaselineRecorder
from netwarden.store.sqlite_db import close_writer, transaction
from netwarden.store.writes import insert_events, insert_health, open_host_store


class DiscoveryWriter:
    def __init__(self, path: Path, now: float, group: str | None = "netwarden",
                 owner: str | None = None, host: str | None = None) -> None:
        self.path = path
        store = open_host_store(path, now, group, owner, host)
        self._conn, self.host, self._host_id = store.conn, store.host, store.host_id
        self._baseline = BaselineRecorder(self._host_id)

    def close(self) -> None:
        close_writer(self._conn)

    # ---- passes ----

    def record_scan(self, result: ScanResult, gap: float,
                    known: Mapping[str, KnownDevice]) -> list[Event]:
        """Write one pass; returns the events written (new_device, device_changed)."""
        events: list[Event] = []
        try:
            with transaction(self._conn):
                self._record_pass(result, gap, known, events)
        except BaseException:
            self._baseline.forget()
            raise
        return events

    def _record_pass(self, result: ScanResult, gap: float, known: Mapping[str, KnownDevice],
                     events: list[Event]) -> None:
        baseline = self._baseline.mode(self._conn, result.time)
        for device in result.devices:
            events.extend(self._record_device(device, gap, known, baseline.mode))
        events.extend(self._baseline.observe(
            self._conn, device_facts(result.devices, known), result.time, baseline))
        methods = [r.as_record() for r in result.reports]
        duration = sum(r.duration_s for r in result.reports)
        self._conn.execute(
            "INSERT INTO scans (time, host_id, interface, subnets, methods, devices, "
            "duration) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (result.time, self._host_id, result.target.interface,
             json.dumps([str(s) for s in result.target.subnets]), json.dumps(methods),
             len(result.devices), duration))
        insert_events(self._conn, self._host_id, events)
        insert_health(self._conn, self._host_id, [
            HealthSample(int(result.time), "discovery", f"{r.method}_{r.state.value}", 1)
            for r in result.reports if r.state is not MethodState.RAN])

    def close_stale(self, now: float, gap: float) -> int:
        """Close the windows of devices unseen for more than ``gap``; returns how many."""
        with transaction(self._conn):
            cursor = self._conn.execute(
                "UPDATE presence SET end = last_seen WHERE end IS NULL AND last_seen < ? AND "
                "device_id IN (SELECT id FROM devices WHERE host_id = ?)",
                (now - gap, self._host_id))
        return cursor.rowcount

    def _record_device(self, device: Device, gap: float, known: Mapping[str, KnownDevice],
                       mode: Mode = Mode.OFF) -> list[Event]:
        """With a baseline (``mode`` not OFF), new_device is marked with the mode in its
        ``baseline`` field and not notified: the device is learned silently, or its drift
        event is the notice. device_changed is marked only while learning (a closed port is
        no drift, so afterwards it is notified as before)."""
        new_mark = {} if mode is Mode.OFF else {"baseline": mode.value}
        changed_mark = {"baseline": mode.value} if mode is Mode.LEARNING else {}
        seen = device.last_seen
        ports = None if device.open_ports is None else json.dumps(list(device.open_ports))
        values = (device.vendor, int(device.randomized), device.device_type.kind,
                  json.dumps(list(device.device_type.reasons)), device.interface, device.ip)
        row = self._conn.execute("SELECT id, open_ports FROM devices WHERE host_id = ? AND "
                                 "mac = ?", (self._host_id, device.mac)).fetchone()
        events = []
        if row is None:
            cursor = self._conn.execute(
                "INSERT INTO devices (host_id, mac, vendor, randomized, device_type, "
                "type_reasons, interface, last_ip, open_ports, first_seen, last_seen) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (self._host_id, device.mac) + values + (ports, seen, seen))
            device_id = int(cursor.lastrowid or 0)
            if device.mac not in known:
                events.append(Event.of(seen, EventKind.NEW_DEVICE, mac=device.mac,
                                       ip=device.ip, vendor=device.vendor, name=device.name,
                                       interface=device.interface,
                                       randomized=device.randomized, **new_mark))
        else:
            device_id, old_ports = row
            self._conn.execute(
                "UPDATE devices SET vendor = ?, randomized = ?, device_type = ?, "
                "type_reasons = ?, interface = ?, last_ip = ?, "
                "open_ports = COALESCE(?, open_ports), last_seen = MAX(last_seen, ?) "
                "WHERE id = ?", values + (ports, seen, device_id))
            change = _port_change(old_ports, device.open_ports)
            if change is not None:
                name = known[device.mac].name if device.mac in known else ""
                events.append(Event.of(seen, EventKind.DEVICE_CHANGED, mac=device.mac,
                                       ip=device.ip, vendor=device.vendor,
                                       name=name or device.name, added_ports=change[0],
                                       removed_ports=change[1], **changed_mark))
        self._record_details(device_id, device)
        self._record_presence(device_id, seen, gap)
        return events

    def _record_details(self, device_id: int, device: Device) -> None:
        seen = device.last_seen
        self._conn.executemany(
            "INSERT INTO device_addresses (device_id, addr, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (device_id, addr) DO UPDATE SET "
            "last_seen = MAX(last_seen, excluded.last_seen)",
            [(device_id, ip, seen, seen) for ip in device.ips])
        self._conn.executemany(
            "INSERT INTO device_names (device_id, name, method, first_seen, last_seen) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (device_id, name, method) DO UPDATE SET "
            "last_seen = MAX(last_seen, excluded.last_seen)",
            [(device_id, n.name, n.method, seen, seen) for n in device.names])
        self._conn.executemany(
            "INSERT INTO device_services (device_id, method, service, port, instance, detail, "
            "first_seen, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (device_id, method, service, port, instance) DO UPDATE SET "
            "detail = excluded.detail, last_seen = MAX(last_seen, excluded.last_seen)",
            [(device_id, s.method, s.service, s.port, s.instance,
              json.dumps(dict(s.detail), sort_keys=True), seen, seen)
             for s in device.services])

    def _record_presence(self, device_id: int, seen: float, gap: float) -> None:
        row = self._conn.execute("SELECT id, start, last_seen, end FROM presence WHERE "
                                 "device_id = ? ORDER BY start DESC LIMIT 1",
                                 (device_id,)).fetchone()
        latest = None if row is None else Window(row[1], row[2], row[3])
        action = on_sighting(latest, seen, gap)
        if action is Action.EXTEND:
            self._conn.execute("UPDATE presence SET last_seen = ? WHERE id = ?", (seen, row[0]))
        elif action is Action.OPEN:
            if latest is not None and latest.is_open:
                self._conn.execute("UPDATE presence SET end = last_seen WHERE id = ?",
                                   (row[0],))
            self._conn.execute("INSERT INTO presence (device_id, start, last_seen) "
                               "VALUES (?, ?, ?)", (device_id, seen, seen))

    # ---- known devices (set from the CLI) ----

    def set_known(self, device: KnownDevice, now: float) -> None:
        with transaction(self._conn):
            self._conn.execute(
                "INSERT INTO known_devices (mac, name, trusted, updated) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (mac) DO UPDATE SET name = excluded.name, "
                "trusted = excluded.trusted, updated = excluded.updated",
                (device.mac, device.name, int(device.trusted), now))

    def remove_known(self, mac: str) -> bool:
        with transaction(self._conn):
            cursor = self._conn.execute("DELETE FROM known_devices WHERE mac = ?", (mac,))
        return cursor.rowcount == 1

    def known_devices(self) -> dict[str, KnownDevice]:
        return read_known(self._conn)


def read_known(conn: sqlite3.Connection) -> dict[str, KnownDevice]:
    return {mac: KnownDevice(mac, name, bool(trusted)) for mac, name, trusted in
            conn.execute("SELECT mac, name, trusted FROM known_devices ORDER BY mac")}


def device_facts(devices: Sequence[Device], known: Mapping[str, KnownDevice]) -> list[Fact]:
    """What a pass shows the baseline: each device (unless named: a known device is part of
    the normal already) and each open port found on one."""
    facts = []
    for device in devices:
        named = {"mac": device.mac, "ip": device.ip, "vendor": device.vendor,
                 "name": known[device.mac].name if device.mac in known else device.name}
        if device.mac not in known:
            facts.append(Fact.of(DriftKind.NEW_DEVICE, device_key(device.mac), **named))
        facts += [Fact.of(DriftKind.NEW_DEVICE_PORT, device_port_key(device.mac, port),
                          **named, port=port) for port in device.open_ports or ()]
    return facts


def _port_change(old_json: str | None,
                 new: tuple[int, ...] | None) -> tuple[list[int], list[int]] | None:
    """(added, removed) when both passes probed the device and its ports differ."""
    if old_json is None or new is None:
        return None
    old = set(json.loads(old_json))
    added, removed = sorted(set(new) - old), sorted(old - set(new))
    return (added, removed) if added or removed else None
