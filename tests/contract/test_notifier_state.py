"""The notifier's loop against real SQLite when its own state file cannot be written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from netwarden.notify.service import Notifier
from netwarden.store.notifier_state import NotifierState
from tests.support.notifier_run import add_events, config, create_db, new_program


class FailingOnce(NotifierState):
    """The real state file, except that the first commit fails as a full disk would."""

    failed = False

    def commit_batch(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if not self.failed:
            self.failed = True
            raise sqlite3.OperationalError("database or disk is full")
        return super().commit_batch(*args, **kwargs)


def test_a_failed_state_write_loses_and_repeats_nothing(tmp_path: Path):
    db = tmp_path / "netwarden.db"
    create_db(db)
    add_events(db, [new_program(i) for i in range(3)])
    notifier = Notifier(config(max_per_window=3, cooldown_s=300), db, tmp_path / "state.db",
                        tmp_path / "mutes.toml", [])
    state = FailingOnce(tmp_path / "state.db")
    assert notifier.step(state) == 0           # read, decided, could not record: undone
    assert state.cursor(str(db.resolve())) is None
    assert notifier.step(state) == 3           # the same three events, as if new
    assert state.cursor(str(db.resolve())) == 3
    assert state.counters() == {"folded": 1, "notices": 3}   # two shown, one summary slot
    assert notifier.step(state) == 0 and state.counters()["notices"] == 3
    state.close()
