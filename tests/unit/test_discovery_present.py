"""Shaping for people: device table and presence timeline lines (golden, fixed width),
Dash records, the [discovery] config section and the scan flags."""

from __future__ import annotations

import pytest

from netwarden.config import ConfigError, config_from_dict
from netwarden.discovery.commands import UsageError, parse_methods, parse_ports
from netwarden.model.discovery import KnownDevice
from netwarden.store.device_queries import DeviceRow, PresenceRow
from netwarden.view.devices import (
    TableRow,
    device_labels,
    device_table_lines,
    device_table_records,
    presence_segments,
    presence_timeline_lines,
    row_from_store,
)

NOW = 1_000_000.0
STORE_ROW = DeviceRow(
    mac="b8:27:eb:12:34:56", ip="10.78.0.11", ips=["10.78.0.11"],
    vendor="Raspberry Pi Foundation", randomized=False, device_type="single-board computer",
    type_reasons=["vendor Raspberry Pi Foundation"],
    names=[{"name": "raspi.local", "method": "mdns"}],
    services=[{"service": "_http._tcp", "method": "mdns", "port": 80, "instance": "pi-web"}],
    open_ports=[22, 80], interface="eth0", first_seen=NOW - 7200, last_seen=NOW - 90,
    known_name="", trusted=False, present=True)


def test_device_table_golden():
    rows = [row_from_store(STORE_ROW),
            TableRow("da:a1:19:00:00:14", "10.78.0.14", "", "", "phone or laptop", "-",
                     NOW - 5, "R")]
    assert device_table_lines(rows, 132, NOW) == [
        "MAC               IP              VENDOR                 NAME                 "
        "TYPE               PORTS            SEEN     FLAGS",
        "b8:27:eb:12:34:56 10.78.0.11      Raspberry Pi Foundati… raspi.local          "
        "single-board comp… 22,80            1m ago   *",
        "da:a1:19:00:00:14 10.78.0.14                                                  "
        "phone or laptop    -                5s ago   R",
    ]
    assert all(len(line) <= 60 for line in device_table_lines(rows, 60, NOW))


def test_presence_timeline_golden():
    windows = [PresenceRow("b8:27:eb:12:34:56", 0.0, 40.0, 40.0),
               PresenceRow("b8:27:eb:12:34:56", 70.0, 100.0, None),
               PresenceRow("00:17:88:01:02:03", 50.0, 60.0, 60.0)]
    lines = presence_timeline_lines(windows, {"b8:27:eb:12:34:56": "raspi"}, 0.0, 100.0, 30)
    # Width 30: labels 8 wide (width // 4 = 7, at least 8), then 21 cells of 100/21 s; a
    # cell is lit when a window overlaps it.
    assert lines == [
        "00:17:8… ··········███········",
        "raspi    █████████·····███████",
    ]
    with pytest.raises(ValueError):
        presence_timeline_lines(windows, {}, 10.0, 10.0, 30)


def test_dash_records_and_segments():
    record = device_table_records([STORE_ROW])[0]
    assert record["name"] == "raspi.local" and record["open_ports"] == "22,80"
    assert record["services"] == "_http._tcp" and record["present"] is True
    segments = presence_segments([PresenceRow("m", 1.0, 5.0, None),
                                  PresenceRow("m", 0.0, 0.5, 0.5)], {"m": "pi"}, now=9.0)
    assert [(s["Task"], s["Start"], s["Finish"], s["open"]) for s in segments] == [
        ("pi", 1.0, 9.0, True), ("pi", 0.0, 0.5, False)]


def test_device_labels_are_names_then_vendor_then_mac_and_unique():
    named = STORE_ROW._replace(known_name="kitchen pi")
    hue1 = STORE_ROW._replace(mac="00:17:88:00:00:01", names=[], vendor="Philips")
    hue2 = hue1._replace(mac="00:17:88:00:00:02")
    bare = STORE_ROW._replace(mac="da:a1:19:00:00:14", names=[], vendor="")
    assert device_labels([STORE_ROW]) == {STORE_ROW.mac: "raspi.local"}
    assert device_labels([named, hue1, hue2, bare]) == {
        named.mac: "kitchen pi", hue1.mac: "Philips (00:17:88:00:00:01)",
        hue2.mac: "Philips (00:17:88:00:00:02)", bare.mac: "da:a1:19:00:00:14"}


def test_discovery_config_section():
    config = config_from_dict({"discovery": {
        "interfaces": ["eth0"], "subnets": ["192.168.1.0/24"], "ports": [80, 22, 80],
        "methods": ["arp", "tcp"], "interval_s": 60, "presence_gap_s": 180,
        "known": [{"mac": "B8-27-EB-12-34-56", "name": "pi", "trusted": True}]}})
    d = config.discovery
    assert d.ports == (22, 80) and d.methods == ("arp", "tcp")
    assert d.known == (KnownDevice("b8:27:eb:12:34:56", "pi", True),)


@pytest.mark.parametrize("section, fragment", [
    ({"subnets": ["10.0.0.300/24"]}, "is not a CIDR subnet"),
    ({"subnets": "10.0.0.0/24"}, "must be a list of CIDR strings"),
    ({"ports": [0]}, "a port must be from 1 to 65535"),
    ({"methods": ["arp", "nmap"]}, "[discovery] methods = 'nmap': must be one of"),
    ({"known": [{"mac": "nope"}]}, "must be a list of tables like"),
    ({"known": [{"mac": "b8:27:eb:12:34:56", "colour": "red"}]}, "must be a list of tables"),
    ({"interval_s": 600, "presence_gap_s": 300}, "must be at least interval_s (600)"),
])
def test_discovery_config_errors(section: dict, fragment: str):
    with pytest.raises(ConfigError) as info:
        config_from_dict({"discovery": section}, "c.toml")
    assert fragment in str(info.value)


def test_scan_flag_parsing():
    assert parse_ports("22, 80,8000-8002") == (22, 80, 8000, 8001, 8002)
    for bad in ("http", "0", "9-3", "70000"):
        with pytest.raises(UsageError, match="--ports"):
            parse_ports(bad)
    assert parse_methods("arp,tcp") == ("arp", "tcp")
    with pytest.raises(UsageError, match="unknown nmap"):
        parse_methods("arp,nmap")
