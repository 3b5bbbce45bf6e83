"""Discovery's writer and queries against real SQLite: devices, presence, events, known."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path

from netwarden.model import Event, EventKind
from netwarden.model.discovery import (
    Device,
    DeviceName,
    DeviceService,
    DeviceType,
    KnownDevice,
    MethodReport,
    MethodState,
    ScanResult,
    ScanTarget,
)
from netwarden.store import schema
from netwarden.store.device_queries import devices, presence_windows, present_at
from netwarden.store.discovery_writer import DiscoveryWriter
from netwarden.store.export_queries import export_events
from netwarden.store.read_source import local_source
from netwarden.store.sqlite_db import open_readonly
from netwarden.store.sqlite_writer import SqliteWriter

REPO = Path(__file__).resolve().parents[2]
TARGET = ScanTarget("eth0", 2, "52:54:00:12:34:56", (ipaddress.IPv4Interface("10.78.0.2/24"),),
                    (), (ipaddress.IPv4Network("10.78.0.0/24"),))
PI, PHONE = "b8:27:eb:12:34:56", "da:a1:19:00:00:14"
GAP = 60.0


def device(mac: str, ip: str, seen: float, ports: tuple[int, ...] | None = None,
           name: str = "") -> Device:
    vendor = "Raspberry Pi Foundation" if mac == PI else ""
    return Device(mac=mac, ips=(ip,), vendor=vendor, randomized=mac == PHONE,
                  names=(DeviceName(name, "mdns"),) if name else (),
                  services=(DeviceService("_ssh._tcp", "mdns", 22, "pi"),) if name else (),
                  open_ports=ports, device_type=DeviceType("computer", ("service _ssh._tcp",)),
                  methods=("arp",), last_seen=seen, interface="eth0")


def scan(t: float, *found: Device) -> ScanResult:
    reports = (MethodReport("arp", MethodState.RAN, duration_s=1.0),
               MethodReport("netbios", MethodState.UNAVAILABLE, "no IPv4 address"))
    return ScanResult(t, TARGET, reports, tuple(found))


def kinds(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.kind.value, str(e.field_dict()["mac"])) for e in events]


def test_migration_2_adds_the_device_tables(tmp_path: Path):
    conn = open_readonly(_writer(tmp_path).path)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert {"devices", "device_addresses", "device_names", "device_services", "presence",
            "scans", "known_devices"} <= tables
    assert schema.current_version(conn) >= 2


def _writer(tmp_path: Path) -> DiscoveryWriter:
    return DiscoveryWriter(tmp_path / "nw.db", now=1000, group=None, host="h1")


def test_new_device_once_known_never_and_port_changes(tmp_path: Path):
    writer = _writer(tmp_path)
    known = {PHONE: KnownDevice(PHONE, "my phone", True)}
    first = writer.record_scan(scan(1000, device(PI, "10.78.0.11", 1000, (22,), "raspi.local"),
                                    device(PHONE, "10.78.0.14", 1000)), GAP, known)
    assert kinds(first) == [("new_device", PI)]            # the named phone raises nothing
    assert first[0].field_dict() == {
        "mac": PI, "ip": "10.78.0.11", "vendor": "Raspberry Pi Foundation",
        "name": "raspi.local", "interface": "eth0", "randomized": False}
    # Same ports again: nothing. A pass that did not probe ports: nothing, ports kept.
    assert writer.record_scan(scan(1010, device(PI, "10.78.0.11", 1010, (22,))), GAP, known) == []
    assert writer.record_scan(scan(1020, device(PI, "10.78.0.11", 1020, None)), GAP, known) == []
    changed = writer.record_scan(scan(1030, device(PI, "10.78.0.21", 1030, (80, 443))), GAP,
                                 known)
    assert kinds(changed) == [("device_changed", PI)]
    assert changed[0].field_dict() == {
        "mac": PI, "ip": "10.78.0.21", "vendor": "Raspberry Pi Foundation",
        "name": "", "added_ports": [80, 443], "removed_ports": [22]}
    writer.close()

    conn = open_readonly(tmp_path / "nw.db")
    recorded = [(e.kind, e.fields["mac"]) for e, _ in export_events(local_source(conn))]
    assert recorded == [("new_device", PI), ("device_changed", PI)]
    (pi,) = [d for d in devices(conn) if d.mac == PI]
    assert pi.ip == "10.78.0.21" and set(pi.ips) == {"10.78.0.11", "10.78.0.21"}
    assert pi.open_ports == [80, 443] and pi.first_seen == 1000 and pi.last_seen == 1030
    assert pi.names == [{"name": "raspi.local", "method": "mdns"}]
    assert pi.services[0]["service"] == "_ssh._tcp"
    # Methods that could not run are health rows.
    assert conn.execute("SELECT counter, COUNT(*) FROM health GROUP BY counter").fetchall() == [
        ("netbios_unavailable", 4)]


def test_a_restarted_writer_does_not_announce_again(tmp_path: Path):
    _writer(tmp_path).record_scan(scan(1000, device(PI, "10.78.0.11", 1000)), GAP, {})
    assert _writer(tmp_path).record_scan(scan(2000, device(PI, "10.78.0.11", 2000)), GAP,
                                         {}) == []


def test_presence_windows_open_extend_close_reopen(tmp_path: Path):
    writer = _writer(tmp_path)
    for t in (1000, 1030, 1060):
        writer.record_scan(scan(t, device(PI, "10.78.0.11", t)), GAP, {})
    assert writer.close_stale(now=1100, gap=GAP) == 0       # 40 s unseen < gap
    assert writer.close_stale(now=1130, gap=GAP) == 1       # 70 s unseen: closes
    # A stale sighting (older than the last one) changes nothing.
    writer.record_scan(scan(1140, device(PI, "10.78.0.11", 1050)), GAP, {})
    writer.record_scan(scan(1200, device(PI, "10.78.0.11", 1200)), GAP, {})
    writer.close()
    conn = open_readonly(tmp_path / "nw.db")
    assert presence_windows(conn, PI) == [(PI, 1000, 1060, 1060, ""), (PI, 1200, 1200, None, "")]
    assert present_at(conn, 1050) == [PI]
    assert present_at(conn, 1100) == []
    assert presence_windows(conn, PI, since=1100) == [(PI, 1200, 1200, None, "")]
    (row,) = devices(conn)
    assert row.present


def test_the_presence_rule_at_its_boundaries(tmp_path: Path):
    """netwarden.model.presence's rule, as the store applies it: a window closes when its
    device is unseen for more than the gap; an open window counts up to its last sighting."""
    writer = _writer(tmp_path)
    for t in (0, 5, 10):
        writer.record_scan(scan(t, device(PI, "10.78.0.11", t)), 5, {})
    assert writer.close_stale(now=15, gap=5) == 0          # unseen for exactly the gap
    assert writer.close_stale(now=16, gap=5) == 1          # unseen for longer
    for t in (20, 25, 30):
        writer.record_scan(scan(t, device(PI, "10.78.0.11", t)), 5, {})
    writer.close()
    conn = open_readonly(tmp_path / "nw.db")
    assert presence_windows(conn, PI) == [(PI, 0, 10, 10, ""), (PI, 20, 30, None, "")]
    assert present_at(conn, 25) == [PI]
    assert present_at(conn, 15) == []


def test_a_late_sighting_after_the_gap_opens_a_new_window_and_closes_the_old(tmp_path: Path):
    writer = _writer(tmp_path)
    writer.record_scan(scan(1000, device(PI, "10.78.0.11", 1000)), GAP, {})
    writer.record_scan(scan(1100, device(PI, "10.78.0.11", 1100)), GAP, {})
    writer.close()
    assert presence_windows(open_readonly(tmp_path / "nw.db")) == [
        (PI, 1000, 1000, 1000, ""), (PI, 1100, 1100, None, "")]


def test_known_devices_from_store_win_over_config(tmp_path: Path):
    writer = _writer(tmp_path)
    writer.record_scan(scan(1000, device(PI, "10.78.0.11", 1000),
                            device(PHONE, "10.78.0.14", 1000)), GAP, {})
    writer.set_known(KnownDevice(PI, "kitchen pi", True), now=1001)
    writer.set_known(KnownDevice(PI, "kitchen pi 2", False), now=1002)    # update
    assert writer.known_devices() == {PI: KnownDevice(PI, "kitchen pi 2", False)}
    writer.close()
    conn = open_readonly(tmp_path / "nw.db")
    config_known = (KnownDevice(PI, "from config", True), KnownDevice(PHONE, "phone", True))
    rows = {r.mac: r for r in devices(conn, config_known)}
    assert (rows[PI].known_name, rows[PI].trusted) == ("kitchen pi 2", False)
    assert (rows[PHONE].known_name, rows[PHONE].trusted) == ("phone", True)


def test_sensor_and_discovery_write_one_database(tmp_path: Path):
    sensor = SqliteWriter(tmp_path / "nw.db", now=1000, group=None, host="h1")
    discovery = _writer(tmp_path)
    sensor.write([], [Event.of(1000.0, EventKind.SENSOR_STARTED, pid=1)], [], 1000)
    discovery.record_scan(scan(1001, device(PI, "10.78.0.11", 1001)), GAP, {})
    sensor.write([], [Event.of(1002.0, EventKind.SENSOR_STOPPED, pid=1)], [], 1002)
    sensor.close()
    discovery.close()
    conn = open_readonly(tmp_path / "nw.db")
    assert [e.kind for e, _ in export_events(local_source(conn))] == [
        "sensor_started", "new_device", "sensor_stopped"]
    hosts = conn.execute("SELECT DISTINCT host_id FROM events").fetchall()
    assert len(hosts) == 1      # both writers use the host's one row


def netwarden(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "netwarden", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=60)


def test_cli_events_devices_presence_known(tmp_path: Path):
    db = tmp_path / "nw.db"
    writer = _writer(tmp_path)
    writer.record_scan(scan(1000, device(PI, "10.78.0.11", 1000, (22,), "raspi.local")), GAP, {})
    writer.close()
    config = tmp_path / "c.toml"
    config.write_text("[store]\ngroup = \"\"\nowner = \"\"\n")
    base = ("--config", str(config), "--db", str(db))

    events = netwarden("events", *base)
    assert events.returncode == 0
    (record,) = [json.loads(line) for line in events.stdout.splitlines()]
    assert record["kind"] == "new_device" and record["mac"] == PI and record["time"] == 1000

    listed = netwarden("devices", "--json", *base)
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert row["mac"] == PI and row["open_ports"] == [22] and row["present"] is True
    table = netwarden("devices", *base)
    assert PI in table.stdout and "raspi.local" in table.stdout

    assert netwarden("known", "set", "B8-27-EB-12-34-56", "--name", "kitchen pi", "--trusted",
                     *base).returncode == 0
    known = [json.loads(line) for line in netwarden("known", "list", *base).stdout.splitlines()]
    assert known == [{"mac": PI, "name": "kitchen pi", "trusted": True, "from": "store"}]
    bad = netwarden("known", "set", "not-a-mac", *base)
    assert bad.returncode == 64 and "'not-a-mac' is not a MAC address" in bad.stderr
    assert netwarden("known", "remove", PI, *base).returncode == 0
    gone = netwarden("known", "remove", PI, *base)
    assert gone.returncode == 64 and "not in the store" in gone.stderr

    windows = [json.loads(line) for line in
               netwarden("presence", PI, *base).stdout.splitlines()]
    assert windows == [{"mac": PI, "start": 1000.0, "last_seen": 1000.0, "end": None}]
    at = netwarden("presence", "--at", "1000", *base).stdout.splitlines()
    assert [json.loads(line)["mac"] for line in at] == [PI]


def test_a_database_from_before_discovery_is_explained(tmp_path: Path):
    import sqlite3
    db = tmp_path / "old.db"
    conn = sqlite3.connect(db, isolation_level=None)
    for statement in schema.MIGRATIONS[0].statements:      # version 1 only
        conn.execute(statement)
    conn.close()
    done = netwarden("devices", "--db", str(db))
    assert done.returncode == 74
    assert done.stderr.startswith("netwarden devices: the database has no discovery tables")


def test_has_discovery_tables_tells_a_store_from_before_discovery(tmp_path: Path):
    from netwarden.store.device_queries import has_discovery_tables
    from tests.support.device_data import store_before_discovery
    store_before_discovery(tmp_path / "old.db", 1000)
    old = open_readonly(tmp_path / "old.db")
    assert schema.current_version(old) == 1 and not has_discovery_tables(old)
    _writer(tmp_path).close()
    assert has_discovery_tables(open_readonly(tmp_path / "nw.db"))
