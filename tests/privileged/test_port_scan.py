"""Inbound port scans from a test namespace reach the store as one `port_scan` event each.

The real sensor runs with scan detection tuned for a quick test (more than 20 ports within
3 s; a scan ends after 3 s quiet). From the peer namespace: Debian's nmap (-sS, -sT, -sF, -sU)
aimed only at this host's address on the test link, and the test's own connect() scanner over
IPv4 and IPv6, each over RANGE (one port of it open). Then 200 ordinary connections from one
client to one open port, and a scan from an allow-listed source: neither is a scan.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
import pytest

from tests.support.netns import PeerNamespace, default_peer, run
from tests.support.sensor_proc import SensorProcess, netwarden

FIRST_PORT, PORT_COUNT = 47100, 40
RANGE = range(FIRST_PORT, FIRST_PORT + PORT_COUNT)
OPEN_PORT = FIRST_PORT + 20            # a listener inside the range: open ports count too
SERVICE_PORT = 47190                   # the ordinary client's service, outside the range
WINDOW_S = 3
#: The longest a scan's event can take to reach the store after its last probe: the window
#: (quiet that ends the scan), a drain, a write window, and slack for a loaded machine.
SETTLE_S = WINDOW_S + 8

#: The test's own scanner: connect() to every port of a range, as fast as the kernel answers.
CONNECT_SCANNER = """
import socket, sys
host, first, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
source = sys.argv[4] if len(sys.argv) > 4 else ""
family = socket.AF_INET6 if ":" in host else socket.AF_INET
for port in range(first, first + count):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(2)
    if source:
        s.bind((source, 0))
    try:
        s.connect((host, port))
    except OSError:
        pass
    s.close()
"""

#: One client, one service, many connections: what an ordinary busy client looks like.
ORDINARY_CLIENT = """
import socket, sys
host, port, source, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
for _ in range(count):
    s = socket.create_connection((host, port), timeout=2, source_address=(source, 0))
    s.sendall(b"hello")
    s.close()
"""


#: Late DNS answers: replies from port 53 to ports nobody listens on any more (no scan).
LATE_REPLIES = """
import socket, sys
host, source, first, count = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((source, 53))
for port in range(first, first + count):
    s.sendto(b"late answer", (host, port))
"""


@pytest.fixture(scope="module")
def scan_peer() -> Iterator[PeerNamespace]:
    ns = default_peer(7)
    yield ns
    ns.delete()


def peer_address(ns: PeerNamespace, last_octet: int) -> str:
    """Another address of the peer (added to its interface), a source of its own."""
    address = ns.host_address(last_octet)
    run(*ns.exec_prefix(), "ip", "addr", "add", f"{address}/24", "dev", ns.peer_if)
    return address


@pytest.fixture(scope="module")
def listeners(scan_peer: PeerNamespace) -> Iterator[None]:
    """The open port in the range, and the ordinary client's service (which accepts)."""
    open_port = socket.create_server((scan_peer.host_v4, OPEN_PORT), backlog=64)
    service = socket.create_server((scan_peer.host_v4, SERVICE_PORT), backlog=256)
    service.settimeout(0.2)
    accepted: list[socket.socket] = []
    stop = False

    def accept() -> None:
        while not stop:
            try:
                conn, _ = service.accept()
                accepted.append(conn)
            except (TimeoutError, OSError):
                continue
    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield
    stop = True
    thread.join(timeout=2)
    for conn in accepted:
        conn.close()
    open_port.close()
    service.close()


@pytest.fixture(scope="module")
def allowed_source(scan_peer: PeerNamespace) -> str:
    return peer_address(scan_peer, 3)


@pytest.fixture(scope="module")
def client_source(scan_peer: PeerNamespace) -> str:
    return peer_address(scan_peer, 4)


@pytest.fixture(scope="module")
def sensor(tmp_path_factory: pytest.TempPathFactory, allowed_source: str,
           listeners: None) -> Iterator[SensorProcess]:
    proc = SensorProcess.write_config(
        tmp_path_factory.mktemp("scan-sensor"),
        extra=f"[scan]\nports = 20\nwindow_s = {WINDOW_S}\nallow = [\"{allowed_source}/32\"]\n")
    proc.start()
    yield proc
    proc.stop()


def in_peer(ns: PeerNamespace, *command: str, timeout: float = 60) -> str:
    done = subprocess.run([*ns.exec_prefix(), *command], capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, f"{command}: {done.stderr}"
    return done.stdout


def scan_events(sensor: SensorProcess, since: float, source: str) -> list[dict[str, object]]:
    return [e for e in sensor.events(since) if e["kind"] == "port_scan" and
            e["source"] == source]


def stored_scans(sensor: SensorProcess, since: float) -> int:
    """Rows of kind port_scan since ``since``, read straight from the store: cheap enough to
    poll (a `netwarden events` process per poll is slow under the kernel matrix's TCG)."""
    conn = sqlite3.connect(f"file:{sensor.db}?mode=ro", uri=True, timeout=10)
    try:
        (count,) = conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'port_scan' AND "
                                "time >= ?", (since,)).fetchone()
    finally:
        conn.close()
    return int(count)


def one_scan_event(sensor: SensorProcess, since: float, source: str) -> dict[str, object]:
    """The scan's event, once it is in the store; and no second one after it (read as a user
    would, with `netwarden events`)."""
    deadline = time.time() + SETTLE_S
    while time.time() < deadline and not stored_scans(sensor, since):
        time.sleep(0.25)
    time.sleep(1.5)   # a duplicate would be written in the same or the next window
    events = scan_events(sensor, since, source)
    assert len(events) == 1, f"events from {source}: {events}"
    return events[0]


def nmap_ports(output: str) -> int:
    """Ports nmap reported on: those it lists plus those its 'Not shown' line counts."""
    listed = sum(1 for line in output.splitlines()
                 if "/tcp" in line.split(" ")[0] or "/udp" in line.split(" ")[0])
    hidden = 0
    for line in output.splitlines():
        if line.startswith("Not shown:"):
            hidden += sum(int(word) for word in line.replace(",", " ").split()
                          if word.isdigit())
    return listed + hidden


def fin_sees_open_ports() -> bool:
    """Before 5.19 a listener frees a FIN/NULL/XMAS probe without saying so (tcp_drop() calls
    __kfree_skb()): there the open port of a FIN scan goes uncounted (docs/port-scans.md)."""
    return b"SKB_DROP_REASON_TCP_FLAGS\0" in Path("/sys/kernel/btf/vmlinux").read_bytes()


NMAP_SCANS = [
    ("-sS", "syn", ["--max-retries", "1"]),
    ("-sT", "connect", ["--max-retries", "1"]),
    ("-sF", "fin", ["--max-retries", "1"]),
    # UDP: the kernel rate-limits its port-unreachable answers; one probe a port is enough
    # for the sensor (it counts before the limit) and keeps nmap quick.
    ("-sU", "udp", ["--max-retries", "0", "--host-timeout", "30s"]),
]


@pytest.mark.parametrize("flag,probe,extra", NMAP_SCANS, ids=[s[0] for s in NMAP_SCANS])
def test_an_nmap_scan_is_one_event(sensor: SensorProcess, scan_peer: PeerNamespace,
                                   flag: str, probe: str, extra: list[str]):
    # A missing nmap fails the test, never skips it (scripts/bootstrap test installs it).
    assert shutil.which("nmap"), "needs Debian's nmap: apt install nmap"
    started = time.time()
    output = in_peer(scan_peer, "nmap", "-n", "-Pn", flag, "-T4", *extra, "-p",
                     f"{RANGE[0]}-{RANGE[-1]}", scan_peer.host_v4, timeout=90)
    assert nmap_ports(output) == PORT_COUNT, output
    event = one_scan_event(sensor, started, scan_peer.peer_v4)
    expected = PORT_COUNT - (flag == "-sF" and not fin_sees_open_ports())
    assert (event["ports"], event["probe"], event["state"]) == (expected, probe, "ended"), \
        event
    assert event["targets"] == [scan_peer.host_v4]
    assert event["sample"] == list(RANGE)[:20]
    assert started - 1 <= float(event["first"]) <= float(event["last"]) <= time.time()


@pytest.mark.parametrize("family", ["4", "6"])
def test_the_tests_own_connect_scan_is_one_event(sensor: SensorProcess,
                                                 scan_peer: PeerNamespace, family: str):
    host, source = ((scan_peer.host_v4, scan_peer.peer_v4) if family == "4"
                    else (scan_peer.host_v6, scan_peer.peer_v6))
    started = time.time()
    in_peer(scan_peer, sys.executable, "-c", CONNECT_SCANNER, host, str(FIRST_PORT),
            str(PORT_COUNT))
    event = one_scan_event(sensor, started, source)
    assert (event["ports"], event["probe"]) == (PORT_COUNT, "connect"), event
    assert event["probes"] == {"connect": PORT_COUNT}


def test_ordinary_connections_and_an_allowed_scan_are_no_scan(
        sensor: SensorProcess, scan_peer: PeerNamespace, client_source: str,
        allowed_source: str):
    """200 connections from one client to one open port, the connect() scan from a source
    in [scan] allow, and a resolver's late answers to 40 closed ports, at once (one wait)."""
    started = time.time()
    in_peer(scan_peer, sys.executable, "-c", LATE_REPLIES, scan_peer.host_v4,
            scan_peer.peer_v4, str(40000), str(PORT_COUNT))
    ordinary = subprocess.Popen([*scan_peer.exec_prefix(), sys.executable, "-c",
                                 ORDINARY_CLIENT, scan_peer.host_v4, str(SERVICE_PORT),
                                 client_source, "200"])
    in_peer(scan_peer, sys.executable, "-c", CONNECT_SCANNER, scan_peer.host_v4,
            str(FIRST_PORT), str(PORT_COUNT), allowed_source)
    assert ordinary.wait(timeout=60) == 0
    time.sleep(SETTLE_S)
    assert stored_scans(sensor, started) == 0
    events = sensor.events(started)
    assert [e for e in events if e["kind"] == "port_scan"] == []
    # The sensor did see the allowed scan: its probes were counted, then let go.
    allowed = [row for row in health_rows(sensor) if row["counter"] == "scan_probes_allowed"]
    assert sum(int(row["delta"]) for row in allowed) >= PORT_COUNT


def health_rows(sensor: SensorProcess) -> list[dict[str, object]]:
    done = netwarden("health", "--db", str(sensor.db))
    return [json.loads(line) for line in done.stdout.splitlines() if line]


def test_open_ports_off_leaves_the_connection_hook_out():
    """[scan] open_ports = false: only the drop hook loads (no program per connection)."""
    from netwarden.config import ScanConfig
    from netwarden.sensor import hooks
    from netwarden.sensor.loader import Loader, ProgramState, cgroup2_root, kernel_features
    from netwarden.sensor.scan import scan_object_config
    features = kernel_features(hooks.OBJECTS)
    loaded = Loader(features, cgroup2_root()).load(
        hooks.SCAN_OBJECT, scan_object_config(ScanConfig(open_ports=False), features))
    try:
        states = {s.program: s.state for s in loaded.statuses}
        assert states == {"tp_kfree_skb": ProgramState.ATTACHED,
                          "sockops_scan": ProgramState.NOT_SELECTED}
        assert [link.name for link in loaded.links] == ["tp_kfree_skb"]
    finally:
        loaded.close()
