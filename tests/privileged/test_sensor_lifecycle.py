"""The sensor's own life: stopping loses nothing, a crash loses at most one window, losses are
counted, and a kernel that cannot count bytes gives a clear error instead of a crash loop."""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

import pytest

from tests.support.netns import PeerNamespace
from tests.support.sensor_proc import SensorProcess, netwarden
from tests.support.traffic import Generator


def udp_burst(gen: Generator, peer: PeerNamespace, receiver: Generator, port: int,
              count: int, size: int = 1000) -> int:
    listener = receiver.start_listener("udp-listen", prefix=peer.exec_prefix(), port=port or 0,
                                       expect=count, quiet_ms=1000)
    try:
        sent = gen.run("udp-send", host=peer.peer_v4, port=listener.port, count=count,
                       size=size).sent
        listener.result()
    finally:
        listener.kill()
    return sent


def test_sigterm_loses_nothing(workdir: Path, peer, gen_factory):
    """Traffic in the window that is still open when SIGTERM arrives is written on the way out."""
    sensor = SensorProcess.write_config(workdir / "sigterm", write_interval_s=60,
                                        drain_interval_s=1.0)
    sensor.start()
    gen, receiver = gen_factory("sender"), gen_factory("receiver")
    try:
        sent = udp_burst(gen, peer, receiver, 22001, count=700, size=900)
    finally:
        assert sensor.stop(signal.SIGTERM) == 0
    totals = sensor.totals(gen.path)
    assert totals.sent == sent == 700 * 900
    kinds = [e["kind"] for e in sensor.events()]
    assert kinds[0] == "sensor_started" and kinds[-1] == "sensor_stopped"


def test_kill9_loses_at_most_the_current_window(workdir: Path, peer, gen_factory):
    """Without pinning (test_sensor_pinning.py has the pinned case, which loses nothing)."""
    sensor = SensorProcess.write_config(workdir / "kill9", write_interval_s=2,
                                        drain_interval_s=0.25, extra='pin_root = ""\n')
    sensor.start()
    gen, receiver = gen_factory("sender"), gen_factory("receiver")
    first = udp_burst(gen, peer, receiver, 22002, count=300, size=1000)
    before = sensor.settled_totals(gen.path, time.time())
    assert before.sent == first
    udp_burst(gen, peer, receiver, 22003, count=300, size=1000)
    sensor.stop(signal.SIGKILL)

    conn = sqlite3.connect(f"file:{sensor.db}?mode=ro", uri=True)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    after = sensor.totals(gen.path)
    # The rows written before the kill are all there, unchanged ...
    assert set(map(json.dumps, before.rows)) <= set(map(json.dumps, after.rows))
    # ... and at most the open window (2 s of the second burst) is missing.
    assert first <= after.sent <= 2 * first
    # The database is usable again: a new sensor starts on it and writes, and says that
    # the run before ended uncleanly, naming the span that may be missing.
    killed = time.time()
    sensor.start()
    more = udp_burst(gen, peer, receiver, 22004, count=100, size=1000)
    assert sensor.stop() == 0
    assert sensor.totals(gen.path).sent >= after.sent + more
    unclean = [e for e in sensor.events() if e.get("state") == "unclean_stop"]
    assert len(unclean) == 1 and unclean[0]["kind"] == "sensor_error"
    last_row = max(float(r["time"]) for r in after.rows)
    assert last_row <= float(unclean[0]["missing_from"]) <= killed
    assert killed <= float(unclean[0]["missing_to"]) <= time.time()
    assert "may be missing" in str(unclean[0]["message"])
    # A clean stop leaves nothing to report at the next start.
    sensor.start()
    assert sensor.stop() == 0
    assert len([e for e in sensor.events() if e.get("state") == "unclean_stop"]) == 1


def test_full_flow_table_is_counted_as_health(workdir: Path, peer, gen_factory):
    """More flows than the kernel table holds between drains: bytes lost are counted."""
    sensor = SensorProcess.write_config(
        workdir / "mapfull", write_interval_s=10, drain_interval_s=10,
        extra="flow_table_entries = 256\n")
    sensor.start()
    server, client = gen_factory("server"), gen_factory("client")
    try:
        listener = server.start_listener("tcp-listen", prefix=peer.exec_prefix(), port=22005,
                                         send=100, conns=400)
        client.run("tcp-connect", host=peer.peer_v4, port=22005, send=100, conns=400)
        listener.result()
    finally:
        sensor.stop()
    health = [json.loads(line) for line in
              netwarden("health", "--db", str(sensor.db)).stdout.splitlines()]
    counters = {(h["source"], h["counter"]): 0 for h in health}
    for h in health:
        counters[(h["source"], h["counter"])] += h["delta"]
    assert counters.get(("net", "flow_map_full"), 0) > 0
    assert counters.get(("net", "bytes_unattributed"), 0) > 0
    errors = [e for e in sensor.events() if e["kind"] == "sensor_error"]
    assert any(e["component"] == "health" and "flow_map_full" in e["message"] for e in errors)


def test_unusable_hook_set_fails_clearly(workdir: Path):
    """Forcing a hook set this kernel cannot run: exit 69, a reason, a sensor_error row."""
    sensor = SensorProcess.write_config(workdir / "fexit", extra='hook_set = "fexit"\n')
    done = netwarden("sensor", "--config", str(sensor.config), "--db", str(sensor.db),
                     check=False)
    assert done.returncode == 69, done.stderr
    assert "fexit_inet_" in done.stderr
    errors = [e for e in sensor.events() if e["kind"] == "sensor_error"]
    assert errors and errors[0]["required"] is True
    assert "cannot load BPF object 'net'" in errors[0]["message"]


@pytest.mark.parametrize("text, key", [
    ("[sensor]\nwrite_interval_s = 0\n", "write_interval_s"),
    ("[sensor]\nwrite_interva_s = 10\n", "write_interva_s"),
    ("[sensor]\nhook_set = \"kprobe\"\n", "hook_set"),
    ("[sensr]\n", "[sensr]"),
    ("[sensor\n", "(syntax)"),
])
def test_bad_config_exits_78_without_starting(workdir: Path, text: str, key: str):
    config = workdir / "bad.toml"
    config.write_text(text)
    done = netwarden("sensor", "--config", str(config), "--db", str(workdir / "bad.db"),
                     check=False)
    assert done.returncode == 78
    assert key in done.stderr and "configuration error" in done.stderr
    assert not (workdir / "bad.db").exists(), "nothing may start on a bad config"


def test_a_storm_of_sigterms_still_stops_cleanly(workdir: Path):
    sensor = SensorProcess.write_config(workdir / "storm")
    sensor.start()
    assert sensor.proc is not None
    for _ in range(50):
        sensor.proc.send_signal(signal.SIGTERM)
    assert sensor.proc.wait(timeout=20) == 0
    assert [e["kind"] for e in sensor.events()][-1] == "sensor_stopped"
