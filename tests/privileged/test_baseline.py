"""Issue 22's acceptance for the baseline, end to end: the real sensor writes a store, the real
notifier follows it and delivers to a webhook, `netwarden baseline` drives the mode.

Learning: a new program and a new LAN device notify nothing and enter the baseline. After
`finish`: a further new program, a new destination of a known program and a new listening
port give one drift notification each; `approve` puts them in the baseline; doing the same
again notifies nothing. Other programs on this machine (other tests) may drift too: only the
notices about this test's own programs, device and port are counted.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from netwarden.model.discovery import Device, DeviceType
from netwarden.notify.delivery import RetryPolicy
from netwarden.notify.http_channels import WebhookChannel
from netwarden.store.discovery_writer import DiscoveryWriter
from tests.support.device_data import GAP, _scan
from tests.support.http_recorder import Recorder
from tests.support.netns import PeerNamespace
from tests.support.notifier_run import RunningNotifier, config, wait_until
from tests.support.sensor_proc import SensorProcess, netwarden
from tests.support.traffic import Generator

MAC = "02:4e:57:00:22:01"


def connect(gen: Generator, server: Generator, peer: PeerNamespace, host: str) -> None:
    """One TCP exchange from ``gen`` (on this host) to ``server`` in the peer namespace."""
    listener = server.start_listener("tcp-listen", prefix=peer.exec_prefix(), port=0,
                                     send=1000, host="::" if ":" in host else "0.0.0.0")
    try:
        gen.run("tcp-connect", host=host, port=listener.port, send=1000)
        listener.result()
    finally:
        listener.kill()


def baseline(db: Path, *args: str) -> str:
    return netwarden("baseline", *args, "--db", str(db)).stdout


def items(db: Path) -> dict[tuple[str, str], dict[str, object]]:
    lines = baseline(db, "list", "--json").splitlines()
    return {(r["kind"], r["key"]): r for r in map(json.loads, lines)}


def notices(recorder: Recorder) -> list[dict[str, object]]:
    return [r.json() for r in list(recorder.requests)]  # type: ignore[misc]


def about(notice: dict[str, object], needles: tuple[str, ...]) -> bool:
    text = json.dumps(notice)
    return any(n in text for n in needles)


def handled_all(running: RunningNotifier, db: Path) -> bool:
    """The notifier's cursor has reached the store's newest event."""
    import sqlite3
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        newest = conn.execute("SELECT MAX(id) FROM events").fetchone()[0] or 0
    finally:
        conn.close()
    state = running.state()
    try:
        return (state.cursor(str(db.resolve())) or 0) >= newest
    finally:
        state.close()


def settle(sensor: SensorProcess, running: RunningNotifier) -> None:
    """Every window that could hold what just ran is written, and the notifier read it."""
    time.sleep(2 * sensor.write_interval_s + 0.5)
    wait_until(lambda: handled_all(running, sensor.db), 15, "the notifier to catch up")
    time.sleep(0.5)   # delivery to the webhook


def test_learning_then_drift_then_approve(tmp_path: Path, peer: PeerNamespace, gen_factory):
    sensor = SensorProcess.write_config(tmp_path)
    known, newcomer = gen_factory("known"), gen_factory("newcomer")
    server, listen = gen_factory("server"), gen_factory("listen")
    recorder = Recorder()
    channel = WebhookChannel(recorder.url, "s3cret", "testhost", 2.0, RetryPolicy(3, 0.2))
    sensor.start()
    try:
        baseline(sensor.db, "learn", "--days", "1")
        assert "learning until" in baseline(sensor.db, "status")
        with RunningNotifier(config(max_per_window=1000), tmp_path, [channel]) as running:
            # ---- learning: a new program and a new device ----
            connect(known, server, peer, peer.peer_v4)
            writer = DiscoveryWriter(sensor.db, time.time(), group=None)
            try:
                device = Device(mac=MAC, ips=(peer.peer_v4,), vendor="", randomized=True,
                                names=(), services=(), open_ports=(22,),
                                device_type=DeviceType("unknown", ()), methods=("arp",),
                                last_seen=time.time(), interface=peer.host_if)
                writer.record_scan(_scan(time.time(), device), GAP, {})
            finally:
                writer.close()
            settle(sensor, running)
            learned = items(sensor.db)
            assert learned[("new_program", str(known.path))]["status"] == "learned"
            assert learned[("new_destination", f"{known.path} {peer.peer_v4}")]["status"] \
                == "learned"
            assert learned[("new_device", MAC)]["status"] == "learned"
            assert learned[("new_device_port", f"{MAC} tcp/22")]["status"] == "learned"
            assert (running.meta("baseline") or "").startswith("learning until")
            mine = (str(known.path), MAC)
            assert [n for n in notices(recorder) if about(n, mine)] == []
            stored = sensor.events()
            assert any(e["kind"] == "new_executable" and e.get("path") == str(known.path)
                       and e.get("baseline") == "learning" for e in stored), stored[-5:]

            # ---- enforcing: three new things, one notice each ----
            assert "enforcing" in baseline(sensor.db, "finish")
            connect(newcomer, server, peer, peer.peer_v4)
            connect(known, server, peer, peer.peer_v6)
            holder = listen.start_listener("tcp-listen", port=0)
            try:
                port_key = f"tcp/{holder.port}"
                wanted = {("new_program", str(newcomer.path)),
                          ("new_destination", f"{known.path} {peer.peer_v6}"),
                          ("new_listen_port", port_key)}

                def drift_notices() -> list[dict[str, object]]:
                    return [n for n in notices(recorder) if n["kind"] == "drift" and
                            (n["fields"]["drift"], n["fields"]["key"]) in wanted]
                wait_until(lambda: len(drift_notices()) >= 3, 20, "three drift notices")
                settle(sensor, running)
                got = drift_notices()
                assert sorted((n["fields"]["drift"], n["fields"]["key"]) for n in got) == \
                    sorted(wanted)
                listen_notice = next(n for n in got if n["fields"]["drift"] ==
                                     "new_listen_port")
                assert listen_notice["fields"]["path"] == str(listen.path)
                assert listen_notice["title"] == "New listening port outside the baseline"
                assert (running.meta("baseline") or "").startswith("enforcing, ")
                # One notice about the new program in all: no "New program on the network"
                # beside its drift, none for its destination (held with it).
                about_newcomer = [n for n in notices(recorder)
                                  if about(n, (str(newcomer.path),))]
                assert [n["kind"] for n in about_newcomer] == ["drift"]
                drifted = items(sensor.db)
                assert all(drifted[k]["status"] == "drift" for k in wanted)

                # ---- approve, then the same again: no new notice ----
                for notice in got:
                    out = baseline(sensor.db, "approve", str(notice["fields"]["item"]))
                    assert out.startswith("in the baseline")
                approved = items(sensor.db)
                assert all(approved[k]["status"] == "approved" for k in wanted)
                before = len(notices(recorder))
                connect(newcomer, server, peer, peer.peer_v4)
                connect(known, server, peer, peer.peer_v6)
                settle(sensor, running)
                assert drift_notices() == got
                assert [n for n in notices(recorder)[before:] if about(n, mine)] == []
            finally:
                holder.kill()
        status = json.loads(baseline(sensor.db, "status", "--json"))
        assert status["mode"] == "enforcing"
        assert status["counts"]["new_program"]["approved"] >= 1
    finally:
        sensor.stop()
        recorder.close()


def test_a_user_who_may_not_write_the_store_is_told_so():
    """learn/finish/approve/revoke write the store: another user gets 77 and why; reading
    (status) works for whoever may read it."""
    import os
    import pwd
    import shutil
    import subprocess
    import tempfile

    from netwarden.store.sqlite_writer import SqliteWriter
    nobody = pwd.getpwnam("nobody")
    # pytest's tmp_path is in root's private directory: nobody could not reach it.
    tmp_path = Path(tempfile.mkdtemp(prefix="nwd-baseline-"))
    os.chmod(tmp_path, 0o755)
    lib = tmp_path / "lib"
    shutil.copytree(Path(__file__).resolve().parents[2] / "netwarden", lib / "netwarden",
                    ignore=shutil.ignore_patterns("__pycache__", "*.bpf.o"))
    db = tmp_path / "store.db"
    SqliteWriter(db, int(time.time()), group=None).close()
    os.chmod(db, 0o644)     # readable by all, writable by root only

    def as_nobody(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}",
             "--clear-groups", "--inh-caps=-all", "/usr/bin/python3", "-m", "netwarden",
             "baseline", *args, "--db", str(db)],
            capture_output=True, text=True, timeout=60, cwd="/",
            env={"PYTHONPATH": str(lib), "PATH": "/usr/bin:/bin",
                 "PYTHONDONTWRITEBYTECODE": "1", "HOME": "/nonexistent"})
    try:
        refused = as_nobody("learn", "--days", "1")
        assert refused.returncode == 77, refused.stderr
        assert "run as the database's owner" in refused.stderr
        status = as_nobody("status")
        assert status.returncode == 0 and status.stdout.startswith("mode: off"), status.stderr
    finally:
        shutil.rmtree(tmp_path, ignore_errors=True)
