"""Enrichment (vendor, randomised MAC, type), merging findings by MAC, presence rules."""

from __future__ import annotations

import ipaddress

import pytest

from netwarden.discovery.enrich import guess_type, is_locally_administered, vendor_of
from netwarden.discovery.inventory import live_hosts, merge
from netwarden.discovery.neighbours import (
    NUD_FAILED, NUD_PERMANENT, NUD_REACHABLE, NUD_STALE, NeighbourEntry, usable_sightings,
)
from netwarden.model.discovery import (
    DeviceService, MethodReport, MethodState, NameFound, PortOpen, ScanTarget, ServiceFound,
    Sighting,
)
from netwarden.model import presence

TARGET = ScanTarget("eth0", 2, "52:54:00:12:34:56",
                    (ipaddress.IPv4Interface("10.78.0.2/24"),),
                    (ipaddress.IPv6Interface("fe80::1/64"),),
                    (ipaddress.IPv4Network("10.78.0.0/24"),))


@pytest.mark.parametrize("mac, vendor", [
    ("b8:27:eb:12:34:56", "Raspberry Pi Foundation"),
    ("00:17:88:01:02:03", "Philips Lighting BV"),
    ("3c:d9:2b:00:00:13", "Hewlett Packard"),
    ("da:a1:19:00:00:14", ""),          # locally administered: no registrant
])
def test_vendor_from_the_ieee_registry(mac: str, vendor: str):
    assert vendor_of(mac) == vendor


def test_locally_administered_bit():
    assert is_locally_administered("da:a1:19:00:00:14")
    assert is_locally_administered("02:00:00:00:00:01")
    assert not is_locally_administered("b8:27:eb:12:34:56")


def test_type_guess_with_reasons():
    printer = guess_type("Hewlett Packard", [DeviceService("_ipp._tcp", "mdns", 631)],
                         [631, 9100], False)
    assert printer.kind == "printer"
    assert printer.reasons == ("service _ipp._tcp", "open port 631", "open port 9100",
                               "vendor Hewlett Packard")
    renderer = guess_type("", [DeviceService("urn:schemas-upnp-org:device:MediaRenderer:1",
                                             "ssdp")], [], False)
    assert renderer.kind == "media player"
    assert guess_type("", [], [], True).kind == "phone or laptop"
    unknown = guess_type("", [], [], False)
    assert unknown.kind == "unknown" and unknown.reasons


def report(method: str, *findings, state=MethodState.RAN, targets=()) -> MethodReport:
    return MethodReport(method, state, findings=tuple(findings), targets=tuple(targets))


def test_merge_joins_address_findings_to_macs():
    reports = [
        report("arp", Sighting("arp", "10.78.0.11", 100.0, "b8:27:eb:12:34:56"),
               Sighting("arp", "10.78.0.12", 100.0, "00:17:88:01:02:03")),
        report("mdns", NameFound("mdns", "10.78.0.11", 101.0, "raspi.local"),
               ServiceFound("mdns", "10.78.0.11", 101.0, "_http._tcp", 80, "pi-web")),
        report("icmp", Sighting("icmp", "10.78.0.99", 100.5)),    # no MAC anywhere
        report("tcp", PortOpen("10.78.0.11", 102.0, 22), targets=["10.78.0.11"]),
        report("ssdp", state=MethodState.UNAVAILABLE),
    ]
    resolver = [Sighting("resolver", "fe80::ba27:ebff:fe12:3456", 90.0, "b8:27:eb:12:34:56")]
    reports.append(report("icmp6", Sighting("icmp", "fe80::ba27:ebff:fe12:3456", 100.0)))
    devices, unresolved = merge(TARGET, reports, resolver)
    assert [d.mac for d in devices] == ["b8:27:eb:12:34:56", "00:17:88:01:02:03"]
    pi, hue = devices
    assert pi.ips == ("10.78.0.11", "fe80::ba27:ebff:fe12:3456")
    assert pi.name == "raspi.local" and pi.open_ports == (22,)
    assert pi.services[0].instance == "pi-web" and pi.last_seen == 102.0
    assert pi.methods == ("arp", "icmp", "mdns", "tcp")
    assert hue.open_ports is None            # never probed: not "no open ports"
    assert unresolved == ("10.78.0.99",)


def test_own_addresses_are_never_devices():
    reports = [report("neighbours", Sighting("neighbours", "10.78.0.2", 1.0,
                                             "52:54:00:12:34:56"))]
    assert merge(TARGET, reports) == ((), ())


def test_live_hosts_are_ipv4_in_scope():
    reports = [report("x", Sighting("icmp", "10.78.0.20", 1.0), Sighting("icmp", "fe80::5", 1.0),
                      Sighting("arp", "10.78.0.3", 1.0, "aa:bb:cc:dd:ee:ff"))]
    assert live_hosts(reports, TARGET) == ["10.78.0.3", "10.78.0.20"]


def test_neighbour_entries_count_by_confirmation_time():
    entries = [NeighbourEntry("10.78.0.11", "b8:27:eb:12:34:56", NUD_REACHABLE, 3.0),
               NeighbourEntry("10.78.0.12", "00:17:88:01:02:03", NUD_STALE, 500.0),
               NeighbourEntry("10.78.0.13", "3c:d9:2b:00:00:13", NUD_FAILED, 0.0),
               NeighbourEntry("10.78.0.14", "01:00:5e:00:00:01", NUD_REACHABLE, 0.0),
               NeighbourEntry("10.78.0.15", "00:11:32:aa:bb:15", NUD_PERMANENT, 9999.0),
               NeighbourEntry("192.0.2.1", "00:11:32:aa:bb:16", NUD_REACHABLE, 0.0)]
    found = usable_sightings(entries, TARGET, now=1000.0, max_age_s=60)
    assert [(s.ip, s.time) for s in found] == [("10.78.0.11", 997.0), ("10.78.0.15", 1000.0)]


def test_presence_rules():
    W = presence.Window
    assert presence.on_sighting(None, 10, gap=5) is presence.Action.OPEN
    assert presence.on_sighting(W(0, 10), 14, gap=5) is presence.Action.EXTEND
    assert presence.on_sighting(W(0, 10), 16, gap=5) is presence.Action.OPEN
    assert presence.on_sighting(W(0, 10), 9, gap=5) is presence.Action.IGNORE
    assert presence.on_sighting(W(0, 10, end=10), 12, gap=5) is presence.Action.OPEN
