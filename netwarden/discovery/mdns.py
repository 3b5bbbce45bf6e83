"""mDNS / DNS-SD (zeroconf): the service types on the link, their instances, host names.

Bound to the scanned interface's IPv4 address only. First the DNS-SD meta-query lists the
service types; then each type is browsed and each instance resolved (SRV, TXT, A). A host
name ('raspi.local') and each instance ('pi-web', type '_http._tcp', port 80) become findings
for the addresses the instance resolves to.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from netwarden.discovery.backend import MethodOutput, own_ipv4
from netwarden.discovery.errors import MethodUnavailable
from netwarden.model.discovery import Finding, NameFound, ScanTarget, ServiceFound

if TYPE_CHECKING:
    from zeroconf import Zeroconf

RESOLVE_TIMEOUT_MS = 1000


def short_type(service_type: str) -> str:
    """'_http._tcp.local.' -> '_http._tcp'."""
    return service_type.removesuffix(".").removesuffix(".local")


def instance_label(name: str, service_type: str) -> str:
    """'pi-web._http._tcp.local.' -> 'pi-web'."""
    return name.removesuffix("." + service_type).removesuffix(service_type)


def host_label(server: str) -> str:
    """'raspi.local.' -> 'raspi.local'."""
    return server.removesuffix(".")


class MdnsBrowse:
    name = "mdns"
    phase = 1

    def __init__(self, listen_s: float, clock: Callable[[], float] = time.time) -> None:
        self.listen_s = listen_s
        self.clock = clock

    def discover(self, target: ScanTarget, hosts: Sequence[str]) -> MethodOutput:
        address = own_ipv4(target, "listen on")
        try:
            from zeroconf import IPVersion, Zeroconf
        except ImportError:
            raise MethodUnavailable("the zeroconf package is not installed "
                                    "(pip install netwarden[discovery])") from None
        zc = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
        try:
            types = self._service_types(zc)
            instances = self._browse(zc, types)
            findings = self._resolve(zc, instances, target)
        finally:
            zc.close()
        return MethodOutput(findings, f"{len(types)} service types, {len(instances)} "
                                      "instances")

    def _service_types(self, zc: Zeroconf) -> tuple[str, ...]:
        from zeroconf import ZeroconfServiceTypes
        return tuple(sorted(ZeroconfServiceTypes.find(zc=zc, timeout=self.listen_s / 2)))

    def _browse(self, zc: Zeroconf, types: tuple[str, ...]) -> list[tuple[str, str]]:
        if not types:
            return []
        from zeroconf import ServiceBrowser
        found: dict[tuple[str, str], None] = {}
        lock = threading.Lock()

        def on_change(zeroconf: object, service_type: str, name: str,
                      state_change: object) -> None:
            with lock:
                found[(service_type, name)] = None

        browser = ServiceBrowser(zc, list(types), handlers=[on_change])
        time.sleep(self.listen_s / 2)
        browser.cancel()
        with lock:
            return sorted(found)

    def _resolve(self, zc: Zeroconf, instances: list[tuple[str, str]],
                 target: ScanTarget) -> list[Finding]:
        findings: list[Finding] = []
        for service_type, name in instances:
            info = zc.get_service_info(service_type, name, timeout=RESOLVE_TIMEOUT_MS)
            if info is None:
                continue
            now = self.clock()
            for ip in info.parsed_addresses():
                if not target.in_scope(ip):
                    continue
                if info.server:
                    findings.append(NameFound(self.name, ip, now, host_label(info.server)))
                findings.append(ServiceFound(
                    self.name, ip, now, short_type(service_type), info.port or 0,
                    instance_label(name, service_type)))
        return findings
