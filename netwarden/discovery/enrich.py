"""What a MAC and a device's services say about it: vendor, randomised MAC, device type.

The vendor comes from the IEEE registry data that netaddr ships (updated with each netaddr
release), never from a hand-kept table. The device type is a guess from vendor words,
announced services, UPnP device types and open ports; every rule that fired is a reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from netwarden.model.discovery import DeviceService, DeviceType


def is_locally_administered(mac: str) -> bool:
    """The U/L bit: set on randomised ('private') MACs of phones and laptops."""
    return bool(int(mac[:2], 16) & 0x02)


def vendor_of(mac: str) -> str:
    """The IEEE registrant of the MAC's OUI; '' for unregistered or randomised MACs."""
    if is_locally_administered(mac):
        return ""
    try:
        import netaddr
    except ImportError:   # reported by the scan as a missing package; vendors stay empty
        return ""
    try:
        return str(netaddr.EUI(mac).oui.registration().org).strip()
    except (netaddr.NotRegisteredError, netaddr.AddrFormatError, IndexError):
        return ""


@dataclass(frozen=True)
class TypeRule:
    kind: str
    weight: int
    vendor_words: tuple[str, ...] = ()
    services: tuple[str, ...] = ()      # mDNS types or substrings of UPnP device types
    ports: tuple[int, ...] = ()


#: Evidence for each device type. Vendor words match case-insensitively inside the vendor.
RULES: tuple[TypeRule, ...] = (
    TypeRule("printer", 3, services=("_ipp._tcp", "_ipps._tcp", "_printer._tcp",
                                     "_pdl-datastream._tcp", "device:Printer")),
    TypeRule("printer", 2, ports=(631, 9100, 515)),
    TypeRule("printer", 1, vendor_words=("brother", "canon", "epson", "lexmark", "kyocera",
                                         "hewlett packard", "xerox")),
    TypeRule("smart lighting", 3, vendor_words=("philips lighting", "signify", "lifx")),
    TypeRule("media player", 3, services=("_googlecast._tcp", "_airplay._tcp", "_raop._tcp",
                                          "_spotify-connect._tcp", "device:MediaRenderer",
                                          "_sonos._tcp")),
    TypeRule("media player", 1, vendor_words=("sonos", "roku", "google")),
    TypeRule("router or gateway", 3, services=("device:InternetGatewayDevice",
                                               "device:WANDevice")),
    TypeRule("router or gateway", 2, vendor_words=("ubiquiti", "mikrotik", "tp-link", "netgear",
                                                   "avm", "juniper", "cisco")),
    TypeRule("network storage", 3, vendor_words=("synology", "qnap", "western digital")),
    TypeRule("network storage", 2, services=("_smb._tcp", "_afpovertcp._tcp",
                                             "_nfs._tcp")),
    TypeRule("network storage", 1, ports=(445, 548, 2049)),
    TypeRule("single-board computer", 3, vendor_words=("raspberry pi",)),
    TypeRule("computer", 1, services=("_ssh._tcp", "_sftp-ssh._tcp", "_workstation._tcp",
                                      "netbios-ns"), ports=(22, 3389)),
    TypeRule("smart home device", 3, services=("_hap._tcp", "_matter._tcp", "_hue._tcp")),
    TypeRule("smart home device", 1, ports=(1883, 8883)),
    TypeRule("camera", 3, services=("device:NetworkCamera", "_rtsp._tcp"), ports=(554,)),
    TypeRule("phone or laptop", 2, services=("_companion-link._tcp", "_apple-mobdev2._tcp")),
)

RANDOMIZED_KIND = "phone or laptop"


def guess_type(vendor: str, services: Sequence[DeviceService], open_ports: Sequence[int],
               randomized: bool) -> DeviceType:
    """The best-supported type and the reasons for it; 'unknown' with no evidence."""
    scores: dict[str, int] = {}
    reasons: dict[str, list[str]] = {}

    def credit(kind: str, weight: int, reason: str) -> None:
        scores[kind] = scores.get(kind, 0) + weight
        reasons.setdefault(kind, []).append(reason)

    lowered = vendor.lower()
    announced = [s.service for s in services]
    for rule in RULES:
        for word in rule.vendor_words:
            if word in lowered:
                credit(rule.kind, rule.weight, f"vendor {vendor}")
        for wanted in rule.services:
            for service in announced:
                if service == wanted or (":" in wanted and wanted in service):
                    credit(rule.kind, rule.weight, f"service {service}")
        for port in rule.ports:
            if port in open_ports:
                credit(rule.kind, rule.weight, f"open port {port}")
    if randomized:
        credit(RANDOMIZED_KIND, 2, "randomized (locally administered) MAC")
    if not scores:
        return DeviceType("unknown", ("no vendor, service or port evidence",))
    kind = max(scores, key=lambda k: (scores[k], k))
    return DeviceType(kind, tuple(dict.fromkeys(reasons[kind])))
