"""Ignore rules, retention, the CSV connection log and "every executable" mode, on one sensor
configured with all of them (they do not interact)."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwarden.model import Executable, FlowRow, ProgramIdentity
from netwarden.store.sqlite_writer import SqliteWriter
from tests.support.netns import PeerNamespace, default_peer
from tests.support.sensor_proc import SensorProcess, netwarden
from tests.support.traffic import Generator, sha256_of

IGNORED_PORT = 24999
OLD = time.time() - 10 * 86400


@pytest.fixture(scope="module")
def far_peer() -> Iterator[PeerNamespace]:
    """A second test host whose whole subnet is ignored."""
    ns = default_peer(5)
    yield ns
    ns.delete()


@pytest.fixture(scope="module")
def gens(trafficgen: Path, workdir: Path) -> dict[str, Generator]:
    directory = workdir / "options-exe"
    made = {name: Generator.copy(trafficgen, directory, f"opt-{name}")
            for name in ("by-path", "by-sha", "kept", "receiver", "execd")}
    with open(made["by-sha"].path, "ab") as handle:     # its own content, so its own sha256
        handle.write(b"\0ignored by hash\0")
    return made


@pytest.fixture(scope="module")
def sensor(workdir: Path, gens: dict[str, Generator], far_peer: PeerNamespace
           ) -> Iterator[SensorProcess]:
    directory = workdir / "options"
    directory.mkdir(parents=True, exist_ok=True)
    seed = SqliteWriter(directory / "netwarden.db", now=int(OLD), group=None)
    old_program = ProgramIdentity(Executable("/usr/bin/ancient", "0" * 64), "ancient", "", 0)
    seed.write([FlowRow(int(OLD), old_program, 2, "tcp", 6, "10.0.0.1", 1, "10.0.0.2", 2, 7, 7)],
               [], [], int(OLD))
    seed.close()
    proc = SensorProcess.write_config(directory, extra=(
        "record_every_exec = true\n"
        "[store]\nretention_days = 1\n"
        "[ignore]\n"
        f'executables = ["{gens["by-path"].path}", "{gens["by-sha"].sha256}"]\n'
        f'subnets = ["{far_peer.peer_v4}/24"]\n'
        f"ports = [{IGNORED_PORT}]\n"
        "[log]\n"
        f'csv_path = "{directory / "flows.csv"}"\ncsv_max_bytes = 65536\ncsv_backups = 2\n'))
    proc.start()
    yield proc
    proc.stop()


def udp(gen: Generator, receiver: Generator, peer: PeerNamespace, port: int,
        count: int = 20) -> float:
    listener = receiver.start_listener("udp-listen", prefix=peer.exec_prefix(), port=port or 0,
                                       expect=count, quiet_ms=800)
    try:
        gen.run("udp-send", host=peer.peer_v4, port=listener.port, count=count, size=200)
        listener.result()
    finally:
        listener.kill()
    return time.time()


def executables(sensor: SensorProcess) -> set[str]:
    conn = sqlite3.connect(f"file:{sensor.db}?mode=ro", uri=True)
    try:
        return {path for (path,) in conn.execute("SELECT path FROM executables")}
    finally:
        conn.close()


def test_ignored_executable_by_path_is_seen_but_not_logged(sensor, peer, gens):
    ended = udp(gens["by-path"], gens["receiver"], peer, 24901)
    kept_end = udp(gens["kept"], gens["receiver"], peer, 24902)
    assert sensor.settled_totals(gens["kept"].path, max(ended, kept_end)).sent == 20 * 200
    assert sensor.totals(gens["by-path"].path).rows == ()
    assert str(gens["by-path"].path) in executables(sensor)


def test_ignored_executable_by_sha256(sensor, peer, gens):
    ended = udp(gens["by-sha"], gens["receiver"], peer, 24903)
    sensor.settled_totals(gens["kept"].path, ended)
    assert sensor.totals(gens["by-sha"].path).rows == ()
    assert str(gens["by-sha"].path) in executables(sensor)


def test_ignored_subnet(sensor, peer, far_peer, gens):
    udp(gens["kept"], gens["receiver"], far_peer, 24904)
    ended = udp(gens["kept"], gens["receiver"], peer, 24905)
    raddrs = {r["raddr"] for r in sensor.settled_totals(gens["kept"].path, ended).rows}
    assert peer.peer_v4 in raddrs and far_peer.peer_v4 not in raddrs


def test_ignored_port(sensor, peer, gens):
    udp(gens["kept"], gens["receiver"], peer, IGNORED_PORT)
    ended = udp(gens["kept"], gens["receiver"], peer, 24906)
    ports = {r["rport"] for r in sensor.settled_totals(gens["kept"].path, ended).rows}
    assert 24906 in ports and IGNORED_PORT not in ports


def test_retention_removed_the_old_rows_and_kept_new_ones(sensor, peer, gens):
    ended = udp(gens["kept"], gens["receiver"], peer, 24907)
    assert sensor.settled_totals(gens["kept"].path, ended).rows
    assert [r for r in sensor.export() if r["exe"] == "/usr/bin/ancient"] == []


def test_csv_log_is_written_and_rotated(sensor, peer, gens):
    """Rotation sizes are unit-tested (test_csvlog.py); here: the sensor writes its rows there
    and rotates. Other tests' traffic on this host lands in the log too."""
    log = Path(sensor.config.parent / "flows.csv")
    ended = udp(gens["kept"], gens["receiver"], peer, 24910)
    sensor.settled_totals(gens["kept"].path, ended)
    rows = []
    for path in (log, Path(f"{log}.1"), Path(f"{log}.2")):   # it may have rotated already
        if path.exists():
            with open(path, newline="") as handle:
                rows += list(csv.DictReader(handle))
    assert any(r["exe"] == str(gens["kept"].path) and r["sha256"] == gens["kept"].sha256
               and r["raddr"] == peer.peer_v4 for r in rows)
    # The log rotates when a window's rows would take it past 64 KiB: four windows of 600
    # rows (one per connection and side, ~200 B each) rotate it four times.
    for batch in range(4):
        port = 24911 + batch
        listener = gens["receiver"].start_listener("tcp-listen", prefix=peer.exec_prefix(),
                                                   port=port, conns=300)
        try:
            gens["kept"].run("tcp-connect", host=peer.peer_v4, port=port, conns=300, send=10)
            listener.result()
        finally:
            listener.kill()
        time.sleep(1.5)     # the next batch lands in another write window
    sensor.settled_totals(gens["kept"].path, time.time())
    assert Path(f"{log}.2").exists() and not Path(f"{log}.3").exists()


def test_every_exec_is_recorded(sensor, gens):
    started = time.time()
    for _ in range(3):   # an exec that never touches the network (usage message, exit 64)
        subprocess.run([str(gens["execd"].path)], capture_output=True, check=False)
    deadline = time.time() + 10
    records: list[dict[str, object]] = []
    while time.time() < deadline and len(records) < 3:
        time.sleep(1)
        out = netwarden("execs", "--db", str(sensor.db), "--since", str(int(started)))
        records = [r for r in map(json.loads, out.stdout.splitlines())
                   if r["exe"] == str(gens["execd"].path)]
    assert len(records) == 3
    assert {r["sha256"] for r in records} == {sha256_of(gens["execd"].path)}
    assert len({r["pid"] for r in records}) == 3
