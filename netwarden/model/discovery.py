"""Records of LAN discovery: what a method found, what a pass concluded, the owner's names.

Every backend returns findings (frozen dataclasses); the inventory merges them into devices
keyed by MAC address; the store writes devices and reads back known devices. They live here,
not in `netwarden.discovery`, because the producer (discovery), the store and the config all
use them, and the store never imports a producer. Nothing here touches the system.
"""

from __future__ import annotations

import enum
import ipaddress
from dataclasses import dataclass, field


class MethodState(enum.Enum):
    RAN = "ran"
    UNAVAILABLE = "unavailable"   # could not run here; the reason says why
    FAILED = "failed"             # started, then broke; the reason is the error


@dataclass(frozen=True)
class Sighting:
    """A host answered (or the kernel's neighbour table knows it) at ``time``."""

    method: str
    ip: str
    time: float
    mac: str = ""


@dataclass(frozen=True)
class NameFound:
    method: str
    ip: str
    time: float
    name: str


@dataclass(frozen=True)
class ServiceFound:
    """A service a host announced (mDNS type, UPnP device type) or answered (NetBIOS)."""

    method: str
    ip: str
    time: float
    service: str
    port: int = 0
    instance: str = ""
    detail: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class PortOpen:
    ip: str
    time: float
    port: int
    method: str = "tcp"


Finding = Sighting | NameFound | ServiceFound | PortOpen


@dataclass(frozen=True)
class MethodReport:
    """One method's part of a pass: whether it ran, why not, what it found."""

    method: str
    state: MethodState
    reason: str = ""
    duration_s: float = 0.0
    findings: tuple[Finding, ...] = ()
    summary: str = ""
    targets: tuple[str, ...] = ()   # addresses it probed (phase-2 methods)

    def as_record(self) -> dict[str, object]:
        record: dict[str, object] = {"name": self.method, "status": self.state.value,
                                     "duration_s": round(self.duration_s, 3)}
        if self.reason:
            record["reason"] = self.reason
        if self.summary:
            record["summary"] = self.summary
        return record


@dataclass(frozen=True)
class ScanTarget:
    """Where one pass looks: an interface, its own addresses and the IPv4 subnets to sweep."""

    interface: str
    ifindex: int
    mac: str
    own_v4: tuple[ipaddress.IPv4Interface, ...]
    own_v6: tuple[ipaddress.IPv6Interface, ...]
    subnets: tuple[ipaddress.IPv4Network, ...]

    def own_ips(self) -> frozenset[str]:
        return frozenset(str(a.ip) for a in self.own_v4 + self.own_v6)  # type: ignore[operator]

    def source_for(self, address: ipaddress.IPv4Address) -> ipaddress.IPv4Address | None:
        """The interface's address on the subnet of ``address`` (None: not on it)."""
        for own in self.own_v4:
            if address in own.network:
                return own.ip
        return None

    def sweep_addresses(self) -> list[ipaddress.IPv4Address]:
        own = {a.ip for a in self.own_v4}
        seen: set[ipaddress.IPv4Address] = set()
        result = []
        for subnet in self.subnets:
            hosts = subnet.hosts() if subnet.prefixlen < 31 else iter(subnet)
            for address in hosts:
                if address not in own and address not in seen:
                    seen.add(address)
                    result.append(address)
        return result

    def in_scope(self, ip: str) -> bool:
        """True for an IPv4 address inside the swept subnets or an IPv6 on this link."""
        try:
            address = ipaddress.ip_address(ip.split("%")[0])
        except ValueError:
            return False
        if address.version == 4:
            return any(address in s for s in self.subnets)
        return address.is_link_local or any(address in a.network for a in self.own_v6)


@dataclass(frozen=True)
class DeviceName:
    name: str
    method: str


@dataclass(frozen=True)
class DeviceService:
    service: str
    method: str
    port: int = 0
    instance: str = ""
    detail: tuple[tuple[str, str], ...] = ()

    def as_record(self) -> dict[str, object]:
        record: dict[str, object] = {"service": self.service, "method": self.method,
                                     "port": self.port, "instance": self.instance}
        record.update(dict(self.detail))
        return record


@dataclass(frozen=True)
class DeviceType:
    """A guess, with the evidence for it ('vendor Hewlett Packard', 'service _ipp._tcp')."""

    kind: str
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Device:
    """One device of a pass, identified by MAC address."""

    mac: str
    ips: tuple[str, ...]
    vendor: str
    randomized: bool
    names: tuple[DeviceName, ...]
    services: tuple[DeviceService, ...]
    open_ports: tuple[int, ...] | None     # None: the port scan did not probe it
    device_type: DeviceType
    methods: tuple[str, ...]
    last_seen: float
    interface: str

    @property
    def ip(self) -> str:
        """The address to show first: IPv4 if it has one."""
        return self.ips[0] if self.ips else ""

    @property
    def name(self) -> str:
        """The best name: mDNS host name, then NetBIOS, then UPnP friendly name."""
        order = {"mdns": 0, "netbios": 1, "ssdp": 2}
        names = sorted(self.names, key=lambda n: (order.get(n.method, 9), n.name))
        return names[0].name if names else ""

    def as_record(self) -> dict[str, object]:
        return {
            "mac": self.mac, "ip": self.ip, "ips": list(self.ips), "vendor": self.vendor,
            "randomized": self.randomized,
            "names": [{"name": n.name, "method": n.method} for n in self.names],
            "services": [s.as_record() for s in self.services],
            "open_ports": None if self.open_ports is None else list(self.open_ports),
            "device_type": self.device_type.kind,
            "type_reasons": list(self.device_type.reasons),
            "methods": list(self.methods), "last_seen": self.last_seen,
            "interface": self.interface,
        }


@dataclass(frozen=True)
class ScanResult:
    time: float
    target: ScanTarget
    reports: tuple[MethodReport, ...]
    devices: tuple[Device, ...]
    unresolved: tuple[str, ...] = field(default=())   # answered, but no MAC could be found

    def ran(self, method: str) -> bool:
        return any(r.method == method and r.state is MethodState.RAN for r in self.reports)

    def as_record(self) -> dict[str, object]:
        return {
            "time": self.time, "interface": self.target.interface,
            "subnets": [str(s) for s in self.target.subnets],
            "methods": [r.as_record() for r in self.reports],
            "devices": [d.as_record() for d in self.devices],
            "unresolved": list(self.unresolved),
        }


@dataclass(frozen=True)
class KnownDevice:
    """A device the owner has named; ``trusted`` ones are expected on the network."""

    mac: str
    name: str = ""
    trusted: bool = False
