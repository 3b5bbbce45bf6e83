"""Counting survives the sensor: pinned maps and links, and counts taken two-phase.

kill -9 during traffic loses no byte (the kernel counts on through the pinned links, and
what the killed sensor had drained is still in the pinned `carry` map until the store has
committed it); a clean stop with --keep-pinned hands the counting to the next start; a
restart with another program version replaces the pinned set and reports the span its
counts cover. Each test compares the store with the generators' own counts, exactly.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from itertools import count
from pathlib import Path

import pytest

from tests.support.netns import PeerNamespace
from tests.support.sensor_proc import SensorProcess, netwarden
from tests.support.traffic import GenResult, Generator, Listener, parse_result

_ROOTS = count()


@pytest.fixture
def pin_root() -> Iterator[str]:
    """A bpffs directory of this test's own (bpffs names may not contain dots)."""
    root = f"/sys/fs/bpf/nwtest_{os.getpid()}_{next(_ROOTS)}"
    yield root
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        for name in filenames:
            os.unlink(os.path.join(dirpath, name))
        os.rmdir(dirpath)


def pinned_sensor(directory: Path, pin_root: str, extra: str = "") -> SensorProcess:
    return SensorProcess.write_config(directory, write_interval_s=2, drain_interval_s=0.25,
                                      extra=f'pin_root = "{pin_root}"\n{extra}')


class PacedSender:
    """A generator sending UDP datagrams paced over seconds, started in the background."""

    def __init__(self, gen: Generator, prefix: list[str] | None = None, **options: object):
        self.proc = subprocess.Popen(gen.command("udp-send", prefix, **options),
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self, timeout: float = 60) -> GenResult:
        out, err = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise RuntimeError(f"udp-send failed: {err.strip()}")
        return parse_result(out)


class Traffic:
    """Three flows at once: a connected UDP socket sending to the peer (its counts live in
    the socket's storage and leave through the drain iterator), an unconnected one (the
    flow tables), and datagrams the peer sends to a host socket (receive)."""

    def __init__(self, peer: PeerNamespace, gen_factory, count_each: int,
                 interval_ms: int = 1, size: int = 700) -> None:
        self.connected, self.unconnected = gen_factory("connected"), gen_factory("unconnected")
        self.receiver, self.remote = gen_factory("receiver"), gen_factory("remote")
        self.count, self.size = count_each, size
        quiet = 3000
        self.peer_in: list[Listener] = [
            self.remote.start_listener("udp-listen", prefix=peer.exec_prefix(), port=0,
                                       expect=count_each, quiet_ms=quiet) for _ in range(2)]
        self.host_in = self.receiver.start_listener("udp-listen", host=peer.host_v4, port=0,
                                                    expect=count_each, quiet_ms=quiet)
        self.senders = [
            PacedSender(self.connected, host=peer.peer_v4, port=self.peer_in[0].port,
                        count=count_each, size=size, interval_ms=interval_ms, connected=1),
            PacedSender(self.unconnected, host=peer.peer_v4, port=self.peer_in[1].port,
                        count=count_each, size=size, interval_ms=interval_ms),
            PacedSender(self.remote, prefix=peer.exec_prefix(), host=peer.host_v4,
                        port=self.host_in.port, count=count_each, size=size,
                        interval_ms=interval_ms),
        ]

    def finish(self) -> tuple[int, int, int]:
        """(sent connected, sent unconnected, received by the host), as the programs say."""
        sent = [s.result().sent for s in self.senders]
        received = self.host_in.result().recv
        for listener in self.peer_in:
            listener.result()
        assert sent[0] == sent[1] == self.count * self.size
        return sent[0], sent[1], received

    def kill(self) -> None:
        for sender in self.senders:
            if sender.proc.poll() is None:
                sender.proc.kill()
                sender.proc.wait()
        for listener in [*self.peer_in, self.host_in]:
            listener.kill()


def wait_for_rows(sensor: SensorProcess, gens: list[Generator], timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        seen = {str(r["exe"]) for r in sensor.export()}
        if all(str(g.path) in seen for g in gens):
            return
        time.sleep(0.2)
    raise AssertionError("no window with the generators' rows was written")


def assert_store_intact(sensor: SensorProcess) -> None:
    conn = sqlite3.connect(f"file:{sensor.db}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()


def assert_exact(sensor: SensorProcess, traffic: Traffic, sent_c: int, sent_u: int,
                 received: int) -> None:
    connected = sensor.totals(traffic.connected.path)
    unconnected = sensor.totals(traffic.unconnected.path)
    receiver = sensor.totals(traffic.receiver.path)
    assert (connected.sent, unconnected.sent, receiver.recv) == (sent_c, sent_u, received)
    assert connected.recv == unconnected.recv == receiver.sent == 0


def test_kill9_during_traffic_loses_no_byte(workdir: Path, peer, gen_factory, pin_root: str):
    sensor = pinned_sensor(workdir / "pin-kill9", pin_root)
    sensor.start()
    traffic = Traffic(peer, gen_factory, count_each=3000)
    try:
        # A window with the generators written (the store knows their executables, as it
        # would for any process older than the last write), the next one open, drains going
        # on: then kill.
        wait_for_rows(sensor, [traffic.connected, traffic.unconnected, traffic.receiver])
        sensor.stop(signal.SIGKILL)
        killed = time.time()
        pinned = list(Path(pin_root).rglob("links/*"))
        assert pinned, "the links stay pinned after kill -9"
        time.sleep(1.0)  # counted while no sensor runs
        sensor.start()
        sent_c, sent_u, received = traffic.finish()
    finally:
        traffic.kill()
    time.sleep(2 * sensor.write_interval_s + 0.5)
    assert sensor.stop() == 0
    assert_store_intact(sensor)
    assert_exact(sensor, traffic, sent_c, sent_u, received)
    assert received > 0
    unclean = [e for e in sensor.events() if e.get("state") == "unclean_stop"]
    assert len(unclean) == 1
    # Nothing may be missing: the span is empty, and it says so.
    assert unclean[0]["missing_from"] == unclean[0]["missing_to"] >= killed
    assert "no traffic is missing" in str(unclean[0]["message"])
    # The clean stop (without --keep-pinned) detached and unpinned everything.
    assert not list(Path(pin_root).rglob("links/*"))


def stop_keeping_pins(sensor: SensorProcess) -> None:
    """SIGTERM a sensor started with --keep-pinned."""
    assert sensor.stop(signal.SIGTERM) == 0


def test_keep_pinned_restart_counts_the_downtime(workdir: Path, peer, gen_factory,
                                                 pin_root: str):
    """A clean stop with --keep-pinned (a restart, a same-version upgrade): the programs
    count on and the next start takes it all; no unclean stop is reported."""
    sensor = pinned_sensor(workdir / "pin-keep", pin_root)
    sensor.args = ("--keep-pinned",)
    sensor.start()
    traffic = Traffic(peer, gen_factory, count_each=2500)
    try:
        time.sleep(1.5)
        stop_keeping_pins(sensor)
        assert list(Path(pin_root).rglob("links/*"))
        time.sleep(1.5)
        sensor.start()
        sent_c, sent_u, received = traffic.finish()
    finally:
        traffic.kill()
    time.sleep(2 * sensor.write_interval_s + 0.5)
    sensor.args = ()
    assert sensor.stop() == 0
    assert_exact(sensor, traffic, sent_c, sent_u, received)
    assert not [e for e in sensor.events() if e.get("state") in ("unclean_stop",
                                                                  "pinned_replaced")]


def test_another_version_replaces_the_pinned_set_and_reports_it(workdir: Path, peer,
                                                                gen_factory, pin_root: str):
    """A restart whose programs differ (here a map size; an upgrade changes the object)
    replaces the pinned set: it cannot read maps of another layout, so what they counted
    since the last commit is reported with its span; counting goes on in the new set."""
    sensor = pinned_sensor(workdir / "pin-version", pin_root)
    sensor.args = ("--keep-pinned",)
    sensor.start()
    stop_keeping_pins(sensor)
    stopped = time.time()
    old = sorted(p.name for p in Path(pin_root).glob("*/net-*"))
    assert len(old) == 1
    sensor.config.write_text(sensor.config.read_text() + "flow_table_entries = 8192\n")
    sensor.args = ()
    sensor.start()
    new = sorted(p.name for p in Path(pin_root).glob("*/net-*"))
    assert len(new) == 1 and new != old
    traffic = Traffic(peer, gen_factory, count_each=500)
    try:
        sent_c, sent_u, received = traffic.finish()
    finally:
        traffic.kill()
    time.sleep(2 * sensor.write_interval_s + 0.5)
    assert sensor.stop() == 0
    assert_exact(sensor, traffic, sent_c, sent_u, received)
    replaced = [e for e in sensor.events() if e.get("state") == "pinned_replaced"]
    assert len(replaced) == 1 and old[0] in str(replaced[0]["message"])
    assert float(replaced[0]["missing_from"]) <= stopped <= float(replaced[0]["missing_to"])


def test_unpin_removes_everything(workdir: Path, pin_root: str):
    sensor = pinned_sensor(workdir / "pin-unpin", pin_root)
    sensor.args = ("--keep-pinned",)
    sensor.start()
    stop_keeping_pins(sensor)
    links = list(Path(pin_root).rglob("links/*"))
    assert links
    ids = [_link_id(link) for link in links]
    assert all(_link_exists(i) for i in ids)
    done = netwarden("sensor", "--unpin", "--config", str(sensor.config), "--db",
                     str(sensor.db))
    assert "removed 1 pinned set" in done.stdout
    assert not list(Path(pin_root).rglob("*"))
    assert not any(_link_exists(i) for i in ids)  # the programs detached


def _link_id(pinned: Path) -> int:
    done = subprocess.run(["bpftool", "--json", "link", "show", "pinned", str(pinned)],
                          capture_output=True, text=True, check=True)
    return int(json.loads(done.stdout)["id"])


def _link_exists(link_id: int) -> bool:
    return subprocess.run(["bpftool", "link", "show", "id", str(link_id)],
                          capture_output=True).returncode == 0


def test_without_a_bpf_filesystem_the_sensor_counts_on_and_says_so(workdir: Path):
    sensor = pinned_sensor(workdir / "pin-nofs", str(workdir / "not-bpffs"))
    sensor.start()
    assert sensor.stop() == 0
    unavailable = [e for e in sensor.events() if e.get("component") == "pinning"]
    assert len(unavailable) == 1 and unavailable[0]["state"] == "unavailable"
    assert "not on a bpf filesystem" in str(unavailable[0]["message"])
