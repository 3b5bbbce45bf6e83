"""Merge the findings of one pass into devices keyed by MAC address (pure).

Methods that see MACs (ARP, the neighbour table) map addresses to MACs; everything found by
address alone (echo replies, mDNS, SSDP, NetBIOS, open ports) joins the device of its
address. An address no MAC is known for is reported as unresolved, never as a device. The
scanner's own addresses and MAC are never devices.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from netwarden.discovery.enrich import guess_type, is_locally_administered, vendor_of
from netwarden.model.discovery import (
    Device, DeviceName, DeviceService, Finding, MethodReport, MethodState, NameFound, PortOpen,
    ScanTarget, ServiceFound, Sighting,
)


@dataclass
class _Draft:
    mac: str
    ips: set[str] = field(default_factory=set)
    names: dict[DeviceName, None] = field(default_factory=dict)
    services: dict[DeviceService, None] = field(default_factory=dict)
    ports: set[int] = field(default_factory=set)
    methods: set[str] = field(default_factory=set)
    last_seen: float = 0.0


def address_key(ip: str) -> tuple[int, int]:
    address = ipaddress.ip_address(ip)
    return (address.version, int(address))


def live_hosts(reports: Iterable[MethodReport], target: ScanTarget) -> list[str]:
    """IPv4 addresses that answered anything so far, in address order (for phase 3)."""
    own = target.own_ips()
    found = {f.ip for r in reports for f in r.findings
             if ipaddress.ip_address(f.ip).version == 4 and f.ip not in own
             and target.in_scope(f.ip)}
    return sorted(found, key=address_key)


def mac_by_ip(sightings: Iterable[Sighting]) -> dict[str, str]:
    """The MAC of each address; the most recent sighting wins if a MAC moved."""
    latest: dict[str, Sighting] = {}
    for s in sightings:
        if s.mac and (s.ip not in latest or s.time >= latest[s.ip].time):
            latest[s.ip] = s
    return {ip: s.mac for ip, s in latest.items()}


def merge(target: ScanTarget, reports: Sequence[MethodReport],
          resolver: Sequence[Sighting] = ()) -> tuple[tuple[Device, ...], tuple[str, ...]]:
    """Devices (ordered by first address) and the unresolved addresses of one pass.

    ``resolver`` holds extra IP-to-MAC facts (a final neighbour-table read) that are not
    sightings of their own.
    """
    findings = [f for r in reports if r.state is MethodState.RAN for f in r.findings]
    sightings = [f for f in findings if isinstance(f, Sighting)]
    macs = mac_by_ip(list(resolver) + sightings)
    own_ips, drafts, unresolved = target.own_ips(), {}, set()
    for finding in findings:
        mac = getattr(finding, "mac", "") or macs.get(finding.ip, "")
        if finding.ip in own_ips or mac == target.mac:
            continue
        if not mac:
            unresolved.add(finding.ip)
            continue
        draft = drafts.setdefault(mac, _Draft(mac))
        _add(draft, finding)
    probed = {ip for r in reports if r.method == "tcp" and r.state is MethodState.RAN
              for ip in r.targets}
    devices = [_finish(d, probed, target.interface) for d in drafts.values()]
    devices.sort(key=lambda d: address_key(d.ip) if d.ip else (9, 0))
    return tuple(devices), tuple(sorted(unresolved, key=address_key))


def _add(draft: _Draft, finding: Finding) -> None:
    draft.ips.add(finding.ip)
    draft.methods.add(finding.method)
    draft.last_seen = max(draft.last_seen, finding.time)
    if isinstance(finding, NameFound):
        draft.names[DeviceName(finding.name, finding.method)] = None
    elif isinstance(finding, ServiceFound):
        draft.services[DeviceService(finding.service, finding.method, finding.port,
                                     finding.instance, finding.detail)] = None
    elif isinstance(finding, PortOpen):
        draft.ports.add(finding.port)


def _finish(draft: _Draft, probed: set[str], interface: str) -> Device:
    ips = tuple(sorted(draft.ips, key=address_key))
    open_ports = tuple(sorted(draft.ports)) if probed & draft.ips else None
    randomized = is_locally_administered(draft.mac)
    vendor = vendor_of(draft.mac)
    services = tuple(sorted(draft.services, key=lambda s: (s.method, s.service, s.port,
                                                           s.instance)))
    return Device(
        mac=draft.mac, ips=ips, vendor=vendor, randomized=randomized,
        names=tuple(sorted(draft.names, key=lambda n: (n.method, n.name))),
        services=services, open_ports=open_ports,
        device_type=guess_type(vendor, services, open_ports or (), randomized),
        methods=tuple(sorted(draft.methods)), last_seen=draft.last_seen, interface=interface)
