"""LAN devices and presence windows for the viewers' tests, written by the real DiscoveryWriter.

Times are relative to `now` (the viewers run on the real clock). Three devices, as the
store lists them (most recently seen first):

- a randomised-MAC phone, here for the last half hour (open window), never port-scanned;
- a Raspberry Pi, known as "kitchen pi" and trusted, here 20 h to 14 h ago and again for the
  last two hours (open window), ports 22 and 80;
- a Philips Hue bridge, here 8 h to 6 h ago (closed window), ports 80 and 443.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

from netwarden.model.discovery import (
    Device, DeviceName, DeviceService, DeviceType, KnownDevice, MethodReport, MethodState,
    ScanResult, ScanTarget,
)
from netwarden.store.discovery_writer import DiscoveryWriter

PI, HUE, PHONE = "b8:27:eb:12:34:56", "00:17:88:01:02:03", "da:a1:19:00:00:14"
PI_NAME = "kitchen pi"
HOUR = 3600
#: Sightings this far apart extend a window; more opens a new one.
GAP = 3 * HOUR

TARGET = ScanTarget("eth0", 2, "52:54:00:12:34:56",
                    (ipaddress.IPv4Interface("10.78.0.2/24"),), (),
                    (ipaddress.IPv4Network("10.78.0.0/24"),))


def _pi(seen: float) -> Device:
    return Device(mac=PI, ips=("10.78.0.11",), vendor="Raspberry Pi Foundation",
                  randomized=False, names=(DeviceName("raspi.local", "mdns"),),
                  services=(DeviceService("_ssh._tcp", "mdns", 22, "raspi"),),
                  open_ports=(22, 80),
                  device_type=DeviceType("single-board computer",
                                         ("vendor Raspberry Pi Foundation",)),
                  methods=("arp", "mdns", "tcp"), last_seen=seen, interface="eth0")


def _hue(seen: float) -> Device:
    return Device(mac=HUE, ips=("10.78.0.12",), vendor="Philips Lighting BV", randomized=False,
                  names=(DeviceName("Hue Bridge", "ssdp"),), services=(), open_ports=(80, 443),
                  device_type=DeviceType("smart home hub", ("vendor Philips Lighting BV",)),
                  methods=("arp", "ssdp", "tcp"), last_seen=seen, interface="eth0")


def _phone(seen: float) -> Device:
    return Device(mac=PHONE, ips=("10.78.0.14",), vendor="", randomized=True, names=(),
                  services=(), open_ports=None,
                  device_type=DeviceType("phone or laptop", ("randomised MAC",)),
                  methods=("arp",), last_seen=seen, interface="eth0")


def _scan(time: float, *devices: Device) -> ScanResult:
    return ScanResult(time, TARGET, (MethodReport("arp", MethodState.RAN, duration_s=1.0),),
                      devices)


def seed_devices(path: Path, now: int, host: str = "testhost") -> None:
    """Add the three devices to the store at `path` (created if missing)."""
    writer = DiscoveryWriter(path, now - 21 * HOUR, group=None, host=host)
    passes = [
        (now - 20 * HOUR, [_pi]), (now - 17 * HOUR, [_pi]), (now - 14 * HOUR, [_pi]),
        (now - 8 * HOUR, [_hue]), (now - 6 * HOUR, [_hue]),
        (now - 2 * HOUR, [_pi]), (now - 30 * 60, [_pi, _phone]),
        (now - 60, [_pi]), (now - 30, [_phone]),
    ]
    for time, makers in passes:
        writer.close_stale(time, GAP)
        writer.record_scan(_scan(time, *(make(time) for make in makers)), GAP, {})
    writer.close_stale(now, GAP)
    writer.set_known(KnownDevice(PI, PI_NAME, True), now - 3 * HOUR)
    writer.close()


def store_before_discovery(path: Path, now: int) -> None:
    """A store as a netwarden from before LAN discovery left it: schema version 1 only,
    applied by the store's own migrate() with the later migrations held back."""
    import sqlite3
    from unittest import mock

    from netwarden.store import schema
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        with mock.patch.object(schema, "MIGRATIONS", schema.MIGRATIONS[:1]):
            assert schema.migrate(conn, now) == [1]
    finally:
        conn.close()
