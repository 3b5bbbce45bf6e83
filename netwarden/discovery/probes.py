"""The connectivity watch's probes: one ICMP echo, one TCP connect, one HTTP(S) request, one
DNS query. Each returns a ProbeResult (latency or why it failed) and never raises.

All run unprivileged: ICMP through a ping socket where ``net.ipv4.ping_group_range`` admits
our group (else a raw socket, which needs CAP_NET_RAW; see discovery/icmp.py). HTTP goes
straight to the server (``http.client`` uses no proxy) with TLS verification on. DNS is one
query over UDP, built and checked here (id, rcode, answer count): a target needs no more.
"""

from __future__ import annotations

import http.client
import os
import secrets
import select
import socket
import ssl
import struct
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from netwarden.discovery.errors import MethodUnavailable
from netwarden.discovery.icmp import echo_request, is_echo_reply, open_echo_socket
from netwarden.model.watch import ProbeResult, WatchTarget

_RCODES = {1: "FORMERR", 2: "SERVFAIL", 3: "NXDOMAIN", 4: "NOTIMP", 5: "REFUSED"}


class ProbeFailed(Exception):
    """A probe's failure; the message is the reason stored and notified."""


def _address(host: str, port: int, kind: int) -> tuple[int, tuple]:  # type: ignore[type-arg]
    """(family, sockaddr) of ``host``; a name is resolved (its failure is the reason)."""
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(host, port, type=kind)[0]
    except socket.gaierror as exc:
        raise ProbeFailed(f"cannot resolve {host}: {exc.strerror}") from None
    return family, sockaddr


def _wait_readable(sock: socket.socket, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0 or not select.select([sock], [], [], left)[0]:
        raise ProbeFailed("timed out")


def icmp_echo(target: WatchTarget, proc_root: Path = Path("/proc")) -> None:
    family, sockaddr = _address(target.probe.host, 0, socket.SOCK_DGRAM)
    v6 = family == socket.AF_INET6
    try:
        sock, raw = open_echo_socket(family, proc_root)
    except MethodUnavailable as exc:
        raise ProbeFailed(str(exc)) from None
    ident, seq = os.getpid() & 0xFFFF, secrets.randbelow(0xFFFF)
    deadline = time.monotonic() + target.timeout_s
    with sock:
        sock.sendto(echo_request(ident, seq, v6), sockaddr)
        while True:
            _wait_readable(sock, deadline)
            try:
                packet, source = sock.recvfrom(2048)
            except OSError as exc:   # an ICMP error (unreachable) queued on the socket
                raise ProbeFailed(exc.strerror or str(exc)) from None
            # Raw sockets see every echo reply on the host: keep only ours.
            if _host(source[0]) == _host(sockaddr[0]) and is_echo_reply(packet, raw and not v6,
                                                          ident if raw else None, v6) \
                    and _echo_seq(packet, raw and not v6) == seq:
                return


def _host(address: str) -> str:
    """An address without its IPv6 scope (fe80::1%eth0)."""
    return address.split("%")[0]


def _echo_seq(packet: bytes, raw_ipv4: bool) -> int:
    if raw_ipv4:
        packet = packet[(packet[0] & 0x0F) * 4:]
    return int(struct.unpack_from("!H", packet, 6)[0])


def tcp_connect(target: WatchTarget) -> None:
    _, sockaddr = _address(target.probe.host, target.probe.port, socket.SOCK_STREAM)
    try:
        socket.create_connection(sockaddr[:2], timeout=target.timeout_s).close()
    except TimeoutError:
        raise ProbeFailed("timed out") from None
    except OSError as exc:
        raise ProbeFailed(exc.strerror or str(exc)) from None


def http_request(target: WatchTarget) -> None:
    probe = target.probe
    connection: http.client.HTTPConnection
    if probe.kind == "https":
        context = ssl.create_default_context()
        if not target.verify_tls:   # the config says so for this target (a self-signed box)
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        connection = http.client.HTTPSConnection(probe.host, probe.port or None,
                                                 timeout=target.timeout_s, context=context)
    else:
        connection = http.client.HTTPConnection(probe.host, probe.port or None,
                                                timeout=target.timeout_s)
    parts = urlsplit(probe.url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", path, headers={"User-Agent": "netwarden-watch"})
        status = connection.getresponse().status
    except TimeoutError:
        raise ProbeFailed("timed out") from None
    except ssl.SSLError as exc:
        raise ProbeFailed(f"TLS: {exc.reason or exc}") from None
    except (OSError, http.client.HTTPException) as exc:
        raise ProbeFailed(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__) \
            from None
    finally:
        connection.close()
    if status != target.expect_status:
        raise ProbeFailed(f"HTTP status {status}, expected {target.expect_status}")


def dns_query(name: str, ident: int) -> bytes:
    """A recursive query for ``name``'s A record."""
    labels = b"".join(bytes([len(p)]) + p.encode("idna") for p in name.split(".") if p)
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + b"\x00" + \
        struct.pack("!HH", 1, 1)


def dns_lookup(target: WatchTarget) -> None:
    probe = target.probe
    family, sockaddr = _address(probe.host, probe.port, socket.SOCK_DGRAM)
    ident = secrets.randbelow(0x10000)
    deadline = time.monotonic() + target.timeout_s
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect(sockaddr)   # replies from anyone else are dropped by the kernel
        try:
            sock.send(dns_query(probe.name, ident))
        except OSError as exc:
            raise ProbeFailed(exc.strerror or str(exc)) from None
        while True:
            _wait_readable(sock, deadline)
            try:
                reply = sock.recv(4096)
            except OSError as exc:   # ICMP port unreachable: no server there
                raise ProbeFailed(exc.strerror or str(exc)) from None
            if len(reply) >= 12 and struct.unpack_from("!H", reply)[0] == ident:
                break
    flags, _, answers = struct.unpack_from("!HHH", reply, 2)
    if flags & 0x000F:
        code = flags & 0x000F
        raise ProbeFailed(f"DNS {_RCODES.get(code, f'rcode {code}')} for {probe.name}")
    if not answers:
        raise ProbeFailed(f"DNS: no answer for {probe.name}")


_PROBES: dict[str, Callable[[WatchTarget], None]] = {
    "icmp": icmp_echo, "tcp": tcp_connect, "http": http_request, "https": http_request,
    "dns": dns_lookup}


def run_probe(target: WatchTarget, clock: Callable[[], float] = time.time) -> ProbeResult:
    """Probe once; the latency is the whole probe (resolving a name included)."""
    started, begun = clock(), time.monotonic()
    try:
        _PROBES[target.probe.kind](target)
    except ProbeFailed as exc:
        return ProbeResult(target.name, started, False, None, str(exc))
    except Exception as exc:  # noqa: BLE001 - a probe's bug must not end the watch
        return ProbeResult(target.name, started, False, None, f"{type(exc).__name__}: {exc}")
    return ProbeResult(target.name, started, True, time.monotonic() - begun)
