"""Executables change under the sensor: in place, by rename, and while it is down."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.netns import PeerNamespace
from tests.support.sensor_proc import SensorProcess
from tests.support.traffic import Generator, sha256_of


def send_once(gen: Generator, receiver: Generator, peer: PeerNamespace, port: int) -> float:
    listener = receiver.start_listener("udp-listen", prefix=peer.exec_prefix(), port=port or 0,
                                       expect=5, quiet_ms=800)
    try:
        gen.run("udp-send", host=peer.peer_v4, port=listener.port, count=5, size=300)
        listener.result()
    finally:
        listener.kill()
    return time.time()


def modified_events(sensor: SensorProcess, path: Path) -> list[dict[str, object]]:
    return [e for e in sensor.events() if e["kind"] == "exe_modified" and e["path"] == str(path)]


def test_append_between_runs_gives_two_hashes_and_one_event(sensor, peer, gen_factory):
    gen, receiver = gen_factory("appended"), gen_factory("receiver")
    before = gen.sha256
    send_once(gen, receiver, peer, 24001)
    sensor.settled_totals(gen.path, time.time())
    with open(gen.path, "ab") as handle:       # still a valid ELF: trailing bytes are ignored
        handle.write(b"\0appended by the test\0")
    after = gen.sha256
    ended = send_once(gen, receiver, peer, 24002)
    totals = sensor.settled_totals(gen.path, ended)
    assert {r["sha256"] for r in totals.rows} == {before, after}
    events = modified_events(sensor, gen.path)
    assert len(events) == 1
    assert (events[0]["old_sha256"], events[0]["new_sha256"]) == (before, after)


def test_replacement_by_rename_gives_two_hashes_and_one_event(sensor, peer, gen_factory,
                                                              trafficgen: Path):
    gen, receiver = gen_factory("replaced"), gen_factory("receiver")
    before = gen.sha256
    send_once(gen, receiver, peer, 24003)
    sensor.settled_totals(gen.path, time.time())
    staged = gen.path.with_name(gen.path.name + ".new")
    shutil.copy2(trafficgen, staged)
    with open(staged, "ab") as handle:
        handle.write(b"\0version 2\0")
    staged.rename(gen.path)                      # a package manager's atomic replace
    after = sha256_of(gen.path)
    ended = send_once(gen, receiver, peer, 24004)
    totals = sensor.settled_totals(gen.path, ended)
    assert {r["sha256"] for r in totals.rows} == {before, after}
    assert len(modified_events(sensor, gen.path)) == 1


def test_change_while_the_sensor_is_down_is_found_on_first_use(workdir: Path, peer,
                                                               gen_factory):
    sensor = SensorProcess.write_config(workdir / "restart-hash")
    gen, receiver = gen_factory("changed-offline"), gen_factory("receiver")
    sensor.start()
    before = gen.sha256
    send_once(gen, receiver, peer, 24005)
    assert sensor.stop() == 0
    with open(gen.path, "ab") as handle:
        handle.write(b"\0changed while nobody watched\0")
    sensor.start()
    ended = send_once(gen, receiver, peer, 24006)
    totals = sensor.settled_totals(gen.path, ended)
    assert sensor.stop() == 0
    assert {r["sha256"] for r in totals.rows} == {before, gen.sha256}
    assert len(modified_events(sensor, gen.path)) == 1


@pytest.fixture(scope="module", params=[2, 10], ids=["window-2s", "window-10s"])
def slow_sensor(request: pytest.FixtureRequest, workdir: Path) -> Iterator[SensorProcess]:
    """A sensor whose write window is long enough to hold two runs and a change between."""
    sensor = SensorProcess.write_config(workdir / f"window-{request.param}",
                                        write_interval_s=request.param)
    sensor.start()
    yield sensor
    sensor.stop()


@pytest.mark.parametrize("change", ["append", "rename"])
def test_a_change_inside_one_window_keeps_each_runs_hash(slow_sensor: SensorProcess, peer,
                                                         gen_factory, trafficgen: Path,
                                                         change: str):
    """A run, a change one second later, another run, all within one write window: each
    run's rows carry the hash of the file that ran, and one exe_modified event says so.
    The hash is the file's as the sensor first saw the process, not as the window is
    written."""
    gen, receiver = gen_factory(f"{change}-in-window"), gen_factory("receiver")
    started = time.time()
    before = gen.sha256
    send_once(gen, receiver, peer, 0)
    time.sleep(1)
    if change == "append":
        with open(gen.path, "ab") as handle:
            handle.write(b"\0appended inside the window\0")
    else:
        staged = gen.path.with_name(gen.path.name + ".new")
        shutil.copy2(trafficgen, staged)
        with open(staged, "ab") as handle:
            handle.write(b"\0replaced inside the window\0")
        staged.rename(gen.path)
    after = sha256_of(gen.path)
    ended = send_once(gen, receiver, peer, 0)
    assert ended - started < slow_sensor.write_interval_s + 2   # a window or two, no more
    totals = slow_sensor.settled_totals(gen.path, ended, timeout=30)
    assert {r["sha256"] for r in totals.rows} == {before, after}
    events = modified_events(slow_sensor, gen.path)
    assert [(e["old_sha256"], e["new_sha256"]) for e in events] == [(before, after)]
