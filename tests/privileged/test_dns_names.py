"""The name each remote address was resolved from, learnt from the DNS answers the kernel
delivered, for unrelated resolvers: glibc (getent), dnspython (pure Python, over TCP) and a
client reading its answer with read(2), recv(2) or recvmsg(2) (as Go, musl and others do).

Each test runs against both ways the sensor reads answers (`sensor.packet_hooks`): from the
reader's buffer in the receive hook ("auto" here), and from packets (dns.bpf.o, "always")."""

from __future__ import annotations

import ipaddress
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import PeerNamespace, run
from tests.support.sensor_proc import REPO, SensorProcess
from tests.support.traffic import Generator

#: Each answer is another address on the host side (its last octet here).
NAMES = {"web": 4, "api": 5, "ignored": 6, "read": 7, "recv": 8, "recvmsg": 9}
DNSPYTHON_CLIENT = """
import sys, dns.message, dns.query
q = dns.message.make_query(sys.argv[2], "A")
r = dns.query.tcp(q, sys.argv[1], timeout=5)
print(" ".join(rd.address for rrset in r.answer for rd in rrset if rrset.rdtype == 1))
"""
#: A connected-UDP resolver that reads the answer with the system call named in argv[3].
SYSCALL_CLIENT = """
import os, select, socket, sys, dns.message
server, name, call = sys.argv[1], sys.argv[2], sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect((server, 53))
s.send(dns.message.make_query(name, "A").to_wire())
if not select.select([s], [], [], 5)[0]:
    sys.exit("no answer")
if call == "read":
    wire = os.read(s.fileno(), 4096)
elif call == "recvmsg":
    wire = s.recvmsg(4096)[0]
else:
    wire = s.recv(4096)
r = dns.message.from_wire(wire)
print(" ".join(rd.address for rrset in r.answer for rd in rrset if rrset.rdtype == 1))
"""


def v6_answer(peer: PeerNamespace) -> str:
    return str(ipaddress.IPv6Address(peer.host_v6) + 3)


def zone(peer: PeerNamespace) -> list[str]:
    a = {name: peer.host_address(octet) for name, octet in NAMES.items()}
    return [f"web.nwtest.example=A:{a['web']}",
            "api.nwtest.example=CNAME:edge.cdn.nwtest.example",
            f"edge.cdn.nwtest.example=A:{a['api']}",
            f"v6.nwtest.example=AAAA:{v6_answer(peer)}",
            f"x.ignored.nwtest.example=A:{a['ignored']}",
            *(f"{call}.nwtest.example=A:{a[call]}" for call in ("read", "recv", "recvmsg"))]


@pytest.fixture(scope="module")
def dns_lan(peer: PeerNamespace) -> Iterator[PeerNamespace]:
    """Extra host addresses for the answers, a DNS server, and the peer's resolv.conf."""
    for octet in NAMES.values():
        run("ip", "addr", "add", f"{peer.host_address(octet)}/24", "dev", peer.host_if)
    run("ip", "-6", "addr", "add", f"{v6_answer(peer)}/64", "dev", peer.host_if, "nodad")
    conf = Path(f"/etc/netns/{peer.name}")
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "resolv.conf").write_text(f"nameserver {peer.host_v4}\noptions timeout:2\n")
    server = subprocess.Popen([sys.executable, "-m", "tests.support.dns_server", peer.host_v4,
                               "53", *zone(peer)], cwd=REPO, stdout=subprocess.PIPE,
                              text=True)
    assert server.stdout is not None and server.stdout.readline().strip() == "ready"
    yield peer
    server.kill()
    server.wait()
    (conf / "resolv.conf").unlink()
    conf.rmdir()
    for octet in NAMES.values():
        run("ip", "addr", "del", f"{peer.host_address(octet)}/24", "dev", peer.host_if,
            check=False)
    run("ip", "-6", "addr", "del", f"{v6_answer(peer)}/64", "dev", peer.host_if, check=False)


@pytest.fixture(scope="module", params=["auto", "always"])
def dns_sensor(workdir: Path, request: pytest.FixtureRequest) -> Iterator[SensorProcess]:
    proc = SensorProcess.write_config(workdir / f"dns-{request.param}",
                                      extra=f'packet_hooks = "{request.param}"\n'
                                            '[ignore]\ndomains = ["ignored.nwtest.example"]\n')
    proc.start()
    yield proc
    proc.stop()


def resolve_glibc(peer: PeerNamespace, name: str, family: str = "ahostsv4") -> str:
    out = subprocess.run([*peer.exec_prefix(), "getent", family, name], capture_output=True,
                         text=True, check=True).stdout
    return out.split()[0]


def resolve_dnspython(peer: PeerNamespace, name: str) -> str:
    out = subprocess.run([*peer.exec_prefix(), sys.executable, "-c", DNSPYTHON_CLIENT,
                          peer.host_v4, name], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def resolve_with_syscall(peer: PeerNamespace, name: str, call: str) -> str:
    out = subprocess.run([*peer.exec_prefix(), sys.executable, "-c", SYSCALL_CLIENT,
                          peer.host_v4, name, call], capture_output=True, text=True, check=True)
    return out.stdout.split()[0]


def connect(peer: PeerNamespace, gen_factory, address: str) -> tuple[Generator, float]:
    server, client = gen_factory("dns-server-side"), gen_factory("dns-client")
    listener = server.start_listener("tcp-listen", host=address, port=0, send=5000)
    try:
        client.run("tcp-connect", prefix=peer.exec_prefix(), host=address, port=listener.port,
                   send=3000)
        listener.result()
    finally:
        listener.kill()
    return client, time.time()


def domains(sensor: SensorProcess, client: Generator, ended: float) -> set[str]:
    return {r["domain"] for r in sensor.settled_totals(client.path, ended).rows}


def test_glibc_resolver(dns_sensor, dns_lan, gen_factory):
    address = resolve_glibc(dns_lan, "web.nwtest.example")
    assert address == dns_lan.host_address(NAMES["web"])
    client, ended = connect(dns_lan, gen_factory, address)
    assert domains(dns_sensor, client, ended) == {"web.nwtest.example"}


def test_python_resolver_over_tcp_through_a_cname_chain(dns_sensor, dns_lan, gen_factory):
    address = resolve_dnspython(dns_lan, "api.nwtest.example")
    assert address == dns_lan.host_address(NAMES["api"])
    client, ended = connect(dns_lan, gen_factory, address)
    assert domains(dns_sensor, client, ended) == {"api.nwtest.example"}


def test_aaaa_answer(dns_sensor, dns_lan, gen_factory):
    address = resolve_glibc(dns_lan, "v6.nwtest.example", "ahostsv6")
    assert address == v6_answer(dns_lan)
    client, ended = connect(dns_lan, gen_factory, address)
    assert domains(dns_sensor, client, ended) == {"v6.nwtest.example"}


def test_ignored_domain(dns_sensor, dns_lan, gen_factory):
    address = resolve_glibc(dns_lan, "x.ignored.nwtest.example")
    assert address == dns_lan.host_address(NAMES["ignored"])
    client, ended = connect(dns_lan, gen_factory, address)
    time.sleep(2.5)
    assert dns_sensor.totals(client.path).rows == ()


@pytest.mark.parametrize("call", ["read", "recv", "recvmsg"])
def test_connected_udp_resolver_reading_with(call, dns_sensor, dns_lan, gen_factory):
    name = f"{call}.nwtest.example"
    address = resolve_with_syscall(dns_lan, name, call)
    assert address == dns_lan.host_address(NAMES[call])
    client, ended = connect(dns_lan, gen_factory, address)
    assert domains(dns_sensor, client, ended) == {name}
