"""Does this kernel count? Send known bytes over loopback and read what the hooks saw.

Used by `netwarden doctor` with the programs it has just loaded: a TCP connection and an
unconnected UDP pair each move a known number of bytes both ways, then the flow tables and
socket counters are drained exactly as the sensor drains them, and the bytes attributed to
this process on those sockets' ports are compared with what was sent. A hook that loads and
counts nothing (the failure that hit monitors of this kind after kernel updates) fails here.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from netwarden.sensor.collectors import DrainedFlow, FlowDrainer
from netwarden.sensor.loader import LoadedObject

TCP_BYTES = 200_000
UDP_DATAGRAMS, UDP_SIZE = 20, 700


@dataclass(frozen=True)
class Check:
    name: str
    expected: int
    counted: int

    @property
    def ok(self) -> bool:
        return self.counted == self.expected


@dataclass(frozen=True)
class SelfTest:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def summary(self) -> str:
        return "; ".join(f"{c.name} {c.counted}/{c.expected}" for c in self.checks)


def _tcp_exchange() -> tuple[int, int]:
    """Send TCP_BYTES each way over loopback; returns the two local ports."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
        with client, server:
            for sender, receiver in ((client, server), (server, client)):
                sender.sendall(b"n" * TCP_BYTES)
                got = 0
                while got < TCP_BYTES:
                    got += len(receiver.recv(65536))
            return client.getsockname()[1], server.getsockname()[1]


def _udp_exchange() -> tuple[int, int]:
    """UDP_DATAGRAMS of UDP_SIZE from one unconnected socket to another, and back."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as b:
        a.bind(("127.0.0.1", 0))
        b.bind(("127.0.0.1", 0))
        for sender, receiver in ((a, b), (b, a)):
            for _ in range(UDP_DATAGRAMS):
                sender.sendto(b"u" * UDP_SIZE, receiver.getsockname())
            for _ in range(UDP_DATAGRAMS):
                receiver.recvfrom(65536)
        return a.getsockname()[1], b.getsockname()[1]


def _mine(flows: list[DrainedFlow], protocol: int, ports: tuple[int, int]) -> tuple[int, int]:
    pid = os.getpid()
    chosen = [f for f in flows if f.tgid == pid and f.protocol == protocol
              and f.local_port in ports]
    return sum(f.sent_bytes for f in chosen), sum(f.recv_bytes for f in chosen)


def run_self_test(net: LoadedObject) -> SelfTest:
    """Drive traffic, drain, compare. ``net`` must be loaded and attached."""
    drainer = FlowDrainer.for_net(net)
    drainer.drain_all()                       # start from empty counters
    tcp_ports = _tcp_exchange()
    udp_ports = _udp_exchange()
    flows = drainer.drain_all()
    tcp_sent, tcp_recv = _mine(flows, socket.IPPROTO_TCP, tcp_ports)
    udp_sent, udp_recv = _mine(flows, socket.IPPROTO_UDP, udp_ports)
    udp_total = 2 * UDP_DATAGRAMS * UDP_SIZE
    return SelfTest((Check("tcp sent", 2 * TCP_BYTES, tcp_sent),
                     Check("tcp received", 2 * TCP_BYTES, tcp_recv),
                     Check("udp sent", udp_total, udp_sent),
                     Check("udp received", udp_total, udp_recv)))
