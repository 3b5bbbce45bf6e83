"""Run the notifier in a test: a database the test fills, the Notifier in a thread, its state."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from netwarden.config import Config, config_from_dict
from netwarden.notify.delivery import Channel
from netwarden.notify.service import Notifier
from netwarden.notify.virustotal import VirusTotalSettings
from netwarden.stopper import Stopper
from netwarden.store.notifier_state import Delivery, NotifierState
from netwarden.store.sqlite_writer import SqliteWriter


def create_db(path: Path) -> None:
    SqliteWriter(path, int(time.time()), group=None, host="testhost").close()


def add_events(path: Path, events: Sequence[tuple[str, dict[str, object]]],
               at: float | None = None) -> None:
    """Insert event rows as the sensor (and other branches' writers) would: kind + JSON."""
    conn = sqlite3.connect(path, isolation_level=None)
    (host_id,) = conn.execute("SELECT id FROM hosts LIMIT 1").fetchone()
    now = time.time() if at is None else at
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO events (time, host_id, kind, data) VALUES (?, ?, ?, ?)",
                     [(now, host_id, kind, json.dumps(fields, sort_keys=True))
                      for kind, fields in events])
    conn.execute("COMMIT")
    conn.close()


def new_program(i: int, sha: str | None = None) -> tuple[str, dict[str, object]]:
    return ("new_executable", {"path": f"/opt/test/prog{i}", "sha256": sha or f"{i:064x}",
                               "name": f"prog{i}", "uid": 1000})


def config(**notifier: object) -> Config:
    settings: dict[str, object] = {"poll_interval_s": 0.1, "first_run": "all"}
    settings.update(notifier)
    return config_from_dict({"notifier": settings})


class RunningNotifier:
    """The notifier's main loop and workers in a thread of the test process."""

    def __init__(self, cfg: Config, directory: Path, channels: Sequence[Channel],
                 virustotal: VirusTotalSettings | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory = directory
        self.notifier = Notifier(cfg, directory / "netwarden.db", directory / "state.db",
                                 directory / "mutes.toml", channels, virustotal, clock)
        self.stop = Stopper()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.notifier.run(self.stop)
        except BaseException as exc:  # shown by the test that joins
            self.error = exc

    def __enter__(self) -> "RunningNotifier":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.request()
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the notifier did not stop"
        self.stop.close()
        if self.error is not None:
            raise self.error

    def state(self) -> NotifierState:
        return NotifierState(self.directory / "state.db")

    def first_delivery(self) -> Delivery | None:
        """The oldest delivery row, None while there is none yet."""
        state = self.state()
        try:
            rows = state.recent(1000)
        finally:
            state.close()
        return rows[0] if rows else None

    def counters(self) -> dict[str, int]:
        state = self.state()
        try:
            return state.counters()
        finally:
            state.close()

    def meta(self, key: str) -> str | None:
        state = self.state()
        try:
            return state.meta(key)
        finally:
            state.close()

    def deliveries(self) -> list[Delivery]:
        state = self.state()
        try:
            return state.recent(1000)
        finally:
            state.close()


def wait_until(predicate: Callable[[], object], timeout: float = 15,
               what: str = "condition") -> object:
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def wait_first(running: RunningNotifier, predicate: Callable[[Delivery], bool],
               what: str, timeout: float = 15) -> Delivery:
    """Wait until the oldest delivery row satisfies ``predicate``; return that row."""
    def check() -> Delivery | None:
        delivery = running.first_delivery()
        return delivery if delivery is not None and predicate(delivery) else None
    return wait_until(check, timeout, what)  # type: ignore[return-value]
