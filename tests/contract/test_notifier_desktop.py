"""The notifier against a real dbus-daemon and a notification server on it, and real SQLite.

Each test starts a private session bus (its own socket in a temp dir) and a server that owns
org.freedesktop.Notifications there, fills a database, runs the notifier and reads back what
the server received.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwarden.mutes import add_mutes
from netwarden.notify.delivery import RetryPolicy
from netwarden.notify.desktop import DesktopChannel
from tests.support.dbus_session import SessionBus, start_session_bus
from tests.support.notifier_run import (
    RunningNotifier, add_events, config, create_db, new_program, wait_first, wait_until,
)
from tests.support.sensor_proc import REPO


FAST_RETRY = RetryPolicy(6, 0.2)


class Desktop:
    """A session bus with (optionally) a notification server on it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.out = directory / "notifications.jsonl"
        self.bus: SessionBus = start_session_bus(directory / "bus")
        self.server: subprocess.Popen[bytes] | None = None

    def start_server(self) -> None:
        self.server = subprocess.Popen(
            [sys.executable, "-m", "tests.support.notification_server", self.bus.address,
             str(self.out)], stdout=subprocess.PIPE, cwd=REPO)
        assert self.server.stdout is not None
        assert self.server.stdout.readline().strip() == b"ready"

    def received(self) -> list[dict[str, object]]:
        if not self.out.exists():
            return []
        return [json.loads(line) for line in self.out.read_text().splitlines()]

    def wait_for(self, count: int, settle: float = 0.7) -> list[dict[str, object]]:
        """Wait for ``count`` notifications, then a little longer to catch extra ones."""
        wait_until(lambda: len(self.received()) >= count, what=f"{count} notifications")
        time.sleep(settle)
        return self.received()

    def channel(self, retry: RetryPolicy = FAST_RETRY) -> DesktopChannel:
        return DesktopChannel(self.bus.address, retry=retry)

    def close(self) -> None:
        if self.server is not None:
            self.server.kill()
            self.server.wait()
        self.bus.stop()


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[Desktop]:
    d = Desktop(tmp_path)
    d.start_server()
    yield d
    d.close()


def test_a_burst_of_50_new_programs_is_folded_into_a_summary(tmp_path: Path, desktop: Desktop):
    create_db(tmp_path / "netwarden.db")
    add_events(tmp_path / "netwarden.db", [new_program(i) for i in range(50)])
    with RunningNotifier(config(max_per_window=5, window_s=60), tmp_path, [desktop.channel()]):
        got = desktop.wait_for(5)
    assert len(got) == 5
    assert [n["summary"] for n in got] == ["New program on the network"] * 4 + [
        "netwarden: 46 more notifications"]
    assert got[0]["body"] == ("prog0 (/opt/test/prog0)\nuser 1000, sha256 "
                              "000000000000…")
    assert got[4]["body"] == "46 new programs: prog4, prog5, prog6, prog7, prog8, …"
    assert {n["app_name"] for n in got} == {"netwarden"}
    assert {n["hints"]["urgency"] for n in got} == {1}


def test_mutes_from_config_and_file_are_respected_and_reloaded(tmp_path: Path,
                                                              desktop: Desktop):
    db = tmp_path / "netwarden.db"
    create_db(db)
    add_mutes(tmp_path / "mutes.toml", kinds=["new_device"])
    add_events(db, [new_program(0), new_program(1),
                    ("new_device", {"mac": "02:00:00:00:00:01", "ip": "192.0.2.5",
                                    "vendor": "", "name": "", "interface": "eth0",
                                    "randomized": True}),
                    new_program(2)])
    cfg = config(mute_programs=["prog1"], max_per_window=50)
    with RunningNotifier(cfg, tmp_path, [desktop.channel()]) as running:
        assert [n["body"].split(" ")[0] for n in desktop.wait_for(2)] == ["prog0", "prog2"]
        time.sleep(0.2)
        add_mutes(tmp_path / "mutes.toml", programs=["/opt/test/prog3"])  # as the TUI would
        time.sleep(0.3)
        add_events(db, [new_program(3), new_program(4)])
        got = desktop.wait_for(3)
        assert running.counters()["muted"] == 3
    assert [n["body"].split(" ")[0] for n in got] == ["prog0", "prog2", "prog4"]


def test_a_restart_resumes_without_repeats_or_losses(tmp_path: Path, desktop: Desktop):
    db = tmp_path / "netwarden.db"
    create_db(db)
    trouble = ("sensor_error", {"component": "health", "state": "lost", "required": False,
                                "message": "ring buffer full", "counters": {"drops": 5}})
    add_events(db, [new_program(0), new_program(1), trouble])
    cfg = config(max_per_window=20)
    with RunningNotifier(cfg, tmp_path, [desktop.channel()]):
        desktop.wait_for(3)
    add_events(db, [new_program(2), trouble, new_program(3)])   # while it is stopped
    with RunningNotifier(cfg, tmp_path, [desktop.channel()]):
        got = desktop.wait_for(5, settle=1.0)
    assert [n["body"].split("\n")[0] for n in got] == [
        "prog0 (/opt/test/prog0)", "prog1 (/opt/test/prog1)", "ring buffer full",
        "prog2 (/opt/test/prog2)", "prog3 (/opt/test/prog3)"]   # the second trouble cooled


def test_sensor_trouble_is_flood_controlled_per_component(tmp_path: Path, desktop: Desktop):
    db = tmp_path / "netwarden.db"
    create_db(db)
    health = ("sensor_error", {"component": "health", "state": "lost", "required": False,
                               "message": "events dropped", "counters": {"exec_drops": 1}})
    add_events(db, [health] * 30 + [
        ("sensor_error", {"component": "silent-zero", "state": "alarm", "required": True,
                          "message": "eth0: 3 MB seen, 0 attributed"}),
        ("sensor_error", {"component": "net/count_send", "state": "failed", "required": True,
                          "message": "attach: EPERM"})])
    with RunningNotifier(config(max_per_window=20), tmp_path, [desktop.channel()]) as running:
        got = desktop.wait_for(3, settle=1.0)
        assert running.counters()["cooled"] == 29
    assert [(n["summary"], n["hints"]["urgency"]) for n in got] == [
        ("netwarden lost data", 1), ("netwarden sees traffic it cannot attribute", 2),
        ("netwarden sensor trouble", 2)]
    assert got[2]["body"] == "net/count_send: failed\nattach: EPERM"
    assert got[0]["icon"] == "dialog-warning"


def test_unknown_kinds_and_unreadable_rows_do_not_stop_it(tmp_path: Path, desktop: Desktop):
    db = tmp_path / "netwarden.db"
    create_db(db)
    add_events(db, [("sensor_started", {"pid": 1, "hook_set": "tracepoint", "reason": "x"}),
                    ("quantum_flux", {"level": 11})])
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO events (time, host_id, kind, data) VALUES (?, 1, "
                 "'new_executable', 'not json')", (time.time(),))
    conn.commit()
    conn.close()
    add_events(db, [new_program(7)])
    with RunningNotifier(config(), tmp_path, [desktop.channel()]) as running:
        got = desktop.wait_for(1)
        counters = running.counters()
    assert [n["body"].split(" ")[0] for n in got] == ["prog7"]
    assert (counters["unknown_kind"], counters["malformed_event"]) == (1, 1)


def test_first_run_skips_history_and_a_late_database_is_picked_up(tmp_path: Path,
                                                                 desktop: Desktop):
    db = tmp_path / "netwarden.db"
    with RunningNotifier(config(first_run="latest"), tmp_path,
                         [desktop.channel()]) as running:
        wait_until(lambda: "no database" in (running.meta("store_status") or ""),
                   what="the missing database to be reported")
        create_db(db)
        add_events(db, [new_program(1)], at=time.time() - 3600)  # before the first start
        add_events(db, [new_program(2)])
        got = desktop.wait_for(1)
        wait_until(lambda: running.meta("store_status") == "ok", what="recovery")
    assert [n["body"].split(" ")[0] for n in got] == ["prog2"]


def test_no_notification_server_yet_means_retry_not_loss(tmp_path: Path):
    desktop = Desktop(tmp_path)    # a bus, but nobody owns org.freedesktop.Notifications
    try:
        db = tmp_path / "netwarden.db"
        create_db(db)
        add_events(db, [new_program(1)])
        with RunningNotifier(config(), tmp_path, [desktop.channel()]) as running:
            first = wait_first(running, lambda d: d.attempts >= 1, "a failed first attempt")
            assert first.status.value == "pending"
            assert "ServiceUnknown" in first.detail
            desktop.start_server()
            got = desktop.wait_for(1)
            wait_first(running, lambda d: d.status.value == "delivered",
                       "the delivery to be recorded")
        assert [n["body"].split(" ")[0] for n in got] == ["prog1"]
    finally:
        desktop.close()


def test_history_that_arrives_after_the_first_look_is_still_history(tmp_path: Path,
                                                                     desktop: Desktop):
    """The notifier first sees an empty database; then an event dated before its first start
    is written (a sensor's window written late), and one after: only the latter notifies."""
    db = tmp_path / "netwarden.db"
    create_db(db)
    with RunningNotifier(config(first_run="latest"), tmp_path,
                         [desktop.channel()]) as running:
        wait_until(lambda: running.meta("store_status") == "ok", what="the first look")
        add_events(db, [new_program(1)], at=time.time() - 3600)
        add_events(db, [new_program(2)])
        got = desktop.wait_for(1)
    assert [n["body"].split(" ")[0] for n in got] == ["prog2"]
