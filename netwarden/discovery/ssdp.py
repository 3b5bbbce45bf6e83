"""SSDP / UPnP: an M-SEARCH on the scanned interface, then each device description.

Responses are unicast back to our socket. The description (the LOCATION URL) is fetched only
when its host is the responder itself and inside the scanned subnets, over plain HTTP, with no
proxy, a short timeout and a size cap: a LAN scan never follows a URL off the link.
"""

from __future__ import annotations

import ipaddress
import socket
import time
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netwarden.discovery.backend import MethodOutput, own_ipv4
from netwarden.model.discovery import Finding, NameFound, ScanTarget, ServiceFound

SSDP_GROUP = ("239.255.255.250", 1900)
MAX_DESCRIPTION_BYTES = 256 * 1024
M_SEARCH = ("M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
            "MX: 1\r\nST: ssdp:all\r\nUSER-AGENT: Linux/1 UPnP/1.1 netwarden/0.1\r\n\r\n")


@dataclass(frozen=True)
class SsdpResponse:
    ip: str
    location: str
    st: str
    usn: str
    server: str


def parse_response(data: bytes, ip: str) -> SsdpResponse | None:
    """An M-SEARCH answer ('HTTP/1.1 200 OK' + headers); None for anything else."""
    try:
        text = data.decode("utf-8", "replace")
    except Exception:  # noqa: BLE001
        return None
    lines = text.split("\r\n")
    if not lines or not lines[0].upper().startswith("HTTP/1.1 200"):
        return None
    headers = {}
    for line in lines[1:]:
        key, sep, value = line.partition(":")
        if sep:
            headers[key.strip().upper()] = value.strip()
    return SsdpResponse(ip, headers.get("LOCATION", ""), headers.get("ST", ""),
                        headers.get("USN", ""), headers.get("SERVER", ""))


@dataclass(frozen=True)
class Description:
    friendly_name: str
    manufacturer: str
    model: str
    device_type: str


def parse_description(xml_bytes: bytes) -> Description:
    """The root device's fields from a UPnP device description (namespace-agnostic)."""
    root = ElementTree.fromstring(xml_bytes)
    device = next((e for e in root.iter() if _local(e.tag) == "device"), None)
    if device is None:
        raise ValueError("no <device> element in the description")
    fields = {_local(child.tag): (child.text or "").strip() for child in device}
    model = " ".join(v for v in (fields.get("modelName", ""), fields.get("modelNumber", ""))
                     if v)
    return Description(fields.get("friendlyName", ""), fields.get("manufacturer", ""),
                       model, fields.get("deviceType", ""))


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def description_url_allowed(url: str, responder: str, target: ScanTarget) -> bool:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    try:
        host = ipaddress.ip_address(parts.hostname)
    except ValueError:
        return False   # a name would need DNS, which may leave the link
    return str(host) == responder and target.in_scope(str(host))


def fetch_description(url: str, timeout: float) -> bytes:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=timeout) as response:
        return response.read(MAX_DESCRIPTION_BYTES)


class SsdpSearch:
    name = "ssdp"
    phase = 1

    def __init__(self, listen_s: float, clock: Callable[[], float] = time.time,
                 fetch: Callable[[str, float], bytes] = fetch_description) -> None:
        self.listen_s = listen_s
        self.clock = clock
        self.fetch = fetch

    def discover(self, target: ScanTarget, hosts: Sequence[str]) -> MethodOutput:
        responses = self._search(target, own_ipv4(target, "search from"))
        findings: list[Finding] = []
        described = 0
        for response in _one_per_location(responses):
            now = self.clock()
            description = self._describe(response, target)
            if description is None:
                findings.append(ServiceFound(
                    self.name, response.ip, now, response.st or "upnp",
                    _port_of(response.location), "",
                    (("location", response.location), ("server", response.server))))
                continue
            described += 1
            findings.append(self._described(response, description, now))
            if description.friendly_name:
                findings.append(NameFound(self.name, response.ip, now,
                                          description.friendly_name))
        return MethodOutput(findings, f"{len(responses)} responses, {described} descriptions")

    def _describe(self, response: SsdpResponse, target: ScanTarget) -> Description | None:
        if not description_url_allowed(response.location, response.ip, target):
            return None
        try:
            return parse_description(self.fetch(response.location, self.listen_s))
        except (OSError, ValueError, ElementTree.ParseError):
            return None

    def _described(self, response: SsdpResponse, description: Description,
                   now: float) -> ServiceFound:
        detail = (("manufacturer", description.manufacturer), ("model", description.model),
                  ("location", response.location), ("server", response.server))
        return ServiceFound(self.name, response.ip, now,
                            description.device_type or response.st or "upnp",
                            _port_of(response.location), description.friendly_name, detail)

    def _search(self, target: ScanTarget, own: str) -> list[SsdpResponse]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        responses = []
        with sock:
            sock.bind((own, 0))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(own))
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 2)
            for _ in range(2):   # UDP: a second copy in case the first is lost
                sock.sendto(M_SEARCH.encode(), SSDP_GROUP)
            deadline = time.monotonic() + self.listen_s
            while (remaining := deadline - time.monotonic()) > 0:
                sock.settimeout(remaining)
                try:
                    data, (ip, _port) = sock.recvfrom(8192)
                except TimeoutError:
                    break
                response = parse_response(data, ip)
                if response is not None and target.in_scope(ip):
                    responses.append(response)
        return responses


def _one_per_location(responses: list[SsdpResponse]) -> list[SsdpResponse]:
    """A device answers once per service and embedded device; keep one per (ip, LOCATION),
    preferring its root-device answer."""
    chosen: dict[tuple[str, str], SsdpResponse] = {}
    for response in responses:
        key = (response.ip, response.location)
        if key not in chosen or response.st == "upnp:rootdevice":
            chosen[key] = response
    return list(chosen.values())


def _port_of(url: str) -> int:
    try:
        return urllib.parse.urlsplit(url).port or 80
    except ValueError:
        return 0
