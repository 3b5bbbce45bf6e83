"""Ignore rules: which flows are not stored (pure; built once from [ignore])."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netwarden.config import SHA256_RE, IgnoreConfig
from netwarden.model import FlowRow

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class IgnoreRules:
    exe_paths: frozenset[str]
    exe_hashes: frozenset[str]
    domain_suffixes: tuple[str, ...]
    subnets: tuple[_Network, ...]
    ports: frozenset[int]

    @classmethod
    def from_config(cls, config: IgnoreConfig) -> "IgnoreRules":
        return cls(
            exe_paths=frozenset(e for e in config.executables if e.startswith("/")),
            exe_hashes=frozenset(e for e in config.executables if SHA256_RE.fullmatch(e)),
            domain_suffixes=tuple(d.strip(".").lower() for d in config.domains),
            subnets=tuple(ipaddress.ip_network(s, strict=False) for s in config.subnets),
            ports=frozenset(config.ports))

    def __bool__(self) -> bool:
        return bool(self.exe_paths or self.exe_hashes or self.domain_suffixes or self.subnets
                    or self.ports)

    def domain_matches(self, domain: str) -> bool:
        name = domain.strip(".").lower()
        return any(name == s or name.endswith("." + s) for s in self.domain_suffixes)

    def address_matches(self, address: str) -> bool:
        if not self.subnets or not address:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip.version == net.version and ip in net for net in self.subnets)

    def matches(self, row: FlowRow) -> bool:
        exe = row.program.exe
        return (exe.path in self.exe_paths or exe.sha256 in self.exe_hashes
                or (bool(row.domain) and self.domain_matches(row.domain))
                or self.address_matches(row.raddr)
                or row.lport in self.ports or row.rport in self.ports)
