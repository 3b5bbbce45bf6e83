"""TCP connect scan of the configured ports on each live host: bounded concurrency and rate.

A completed handshake is an open port (closed at once); a refusal is closed; silence until
the timeout is filtered. Unprivileged: plain connect(), no raw packets.
"""

from __future__ import annotations

import asyncio
import ipaddress
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from netwarden.discovery.backend import MethodOutput, own_ipv4
from netwarden.discovery.errors import MethodUnavailable
from netwarden.model.discovery import PortOpen, ScanTarget


@dataclass(frozen=True)
class PortScanLimits:
    concurrency: int
    rate: float          # connects started per second
    timeout_s: float


@dataclass
class _Tally:
    open: int = 0
    closed: int = 0
    silent: int = 0


class TcpConnectScan:
    name = "tcp"
    phase = 3

    def __init__(self, ports: Sequence[int], limits: PortScanLimits,
                 clock: Callable[[], float] = time.time) -> None:
        self.ports = tuple(ports)
        self.limits = limits
        self.clock = clock

    def discover(self, target: ScanTarget, hosts: Sequence[str]) -> MethodOutput:
        if not self.ports:
            raise MethodUnavailable("no ports configured ([discovery] ports or --ports)")
        addresses = [h for h in hosts if ipaddress.ip_address(h).version == 4]
        source = own_ipv4(target, "scan from")
        tally = _Tally()
        found = asyncio.run(self._scan(addresses, source, tally))
        summary = (f"{len(addresses)} hosts x {len(self.ports)} ports: {tally.open} open, "
                   f"{tally.closed} closed, {tally.silent} silent")
        return MethodOutput(found, summary, addresses)

    async def _scan(self, addresses: Sequence[str], source: str,
                    tally: _Tally) -> list[PortOpen]:
        gate = asyncio.Semaphore(self.limits.concurrency)
        loop = asyncio.get_running_loop()
        start = loop.time()
        pairs = [(ip, port) for ip in addresses for port in self.ports]

        async def probe(index: int, ip: str, port: int) -> PortOpen | None:
            await asyncio.sleep(max(0.0, start + index / self.limits.rate - loop.time()))
            async with gate:
                return await self._connect(ip, port, source, tally)

        results = await asyncio.gather(*(probe(i, ip, port) for i, (ip, port) in
                                         enumerate(pairs)))
        return [r for r in results if r is not None]

    async def _connect(self, ip: str, port: int, source: str, tally: _Tally) -> PortOpen | None:
        try:
            _reader, writer = await asyncio.wait_for(
                asyncio.open_connection(ip, port, local_addr=(source, 0)),
                self.limits.timeout_s)
        except (TimeoutError, asyncio.TimeoutError):
            tally.silent += 1
            return None
        except OSError:
            tally.closed += 1   # refused, or the host went away (unreachable)
            return None
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
        tally.open += 1
        return PortOpen(ip, self.clock(), port)
