"""`netwarden tui` in a real terminal (tmux), unprivileged, on a seeded store."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.viewer_data import seed_store
from tests.support.viewer_proc import share, tmux_pane, viewer_args, viewer_dir

ENV = {"TZ": "UTC", "LANG": "C.UTF-8"}
READING = "reading the store"


@pytest.fixture
def store() -> Iterator[Path]:
    with viewer_dir("nwv-tui-") as directory:
        db = directory / "nw.db"
        seed_store(db, int(time.time()))
        share(db)
        yield db


def rows_of(screen: str) -> list[str]:
    """The table's first cells (the value column), marker removed."""
    return [line[2:].split("  ")[0].strip() for line in screen.splitlines()[3:-1]
            if line.strip()]


def test_browse_filter_exclude_range_and_units(store: Path):
    with tmux_pane("tui") as pane:
        pane.start(viewer_args("tui", "--db", str(store)), env=ENV)
        first = pane.wait_for("/usr/bin/curl", unless=READING)
        assert first.splitlines()[0].startswith("netwarden: executable | hour ")
        assert rows_of(first) == ["/usr/lib/firefox/firefox", "/usr/sbin/nginx",
                                  "/usr/sbin/sshd", "/usr/bin/curl"]
        assert "4 entries" in first

        # Enter on curl: filter on it, drill into its domains.
        pane.keys("Down", "Down", "Down", "Enter")
        drilled = pane.wait_for("filters: +executable=/usr/bin/curl", unless=READING)
        assert "DOMAIN" in drilled.splitlines()[2]
        assert rows_of(drilled) == ["example.org", "(unknown)"]

        # e on example.org: excluded; only the unknown-domain traffic (DNS) is left.
        pane.keys("e")
        excluded = pane.wait_for("-domain=example.org", unless=READING)
        assert rows_of(excluded) == ["(unknown)"]
        assert "60 B" in excluded and "120 B" in excluded

        # Units: auto -> B -> KiB.
        pane.keys("u", "u")
        kib = pane.wait_for("unit KiB", unless=READING)
        assert "0.1 KiB" in kib

        # Backspace twice: no filters, executables again; then the range grows to a week.
        pane.keys("BSpace", "BSpace")
        pane.wait_for("filters: none", unless=READING)
        pane.keys("u", "u", "u", "t")
        day = pane.wait_for("| day ", unless=READING)
        assert "/usr/bin/apt" not in day and "unit auto" in day
        pane.keys("t")
        week = pane.wait_for("| week ", unless=READING)
        assert rows_of(week)[0] == "/usr/bin/apt" and "8.6 MiB" in week

        # History: one week back holds nothing.
        pane.keys("[")
        back = pane.wait_for("(-1)", unless=READING)
        assert "no traffic here" in back

        pane.keys("]", "/", "f", "i", "r", "e", "Enter")
        searched = pane.wait_for("search:fire", unless=READING)
        assert rows_of(searched) == ["/usr/lib/firefox/firefox"]

        pane.keys("?")
        assert "Backspace       remove the last filter" in pane.wait_for("keys")
        pane.keys("Escape", "q")
        pane.wait_for("EXITED 0")


def test_redraws_on_resize(store: Path):
    with tmux_pane("tuiresize") as pane:
        pane.start(viewer_args("tui", "--db", str(store)), env=ENV)
        assert "TOTAL" not in pane.wait_for("/usr/bin/curl", unless=READING)
        pane.resize(120, 30)
        wide = pane.wait_for("TOTAL", unless=READING)
        assert max(len(line) for line in wide.splitlines()) > 100
        pane.keys("q")
        pane.wait_for("EXITED 0")


def test_missing_empty_and_locked_stores_are_explained(store: Path):
    directory = store.parent
    empty = directory / "empty.db"
    empty.write_bytes(b"")
    locked = directory / "locked.db"
    holder = sqlite3.connect(locked, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    holder.execute("INSERT INTO t VALUES (1)")
    share(locked)
    share(empty)
    try:
        for db, expected in ((directory / "absent.db", "no database at"),
                             (empty, "holds no netwarden data yet"),
                             (locked, "database is locked: another")):
            with tmux_pane("tuibad") as pane:
                pane.start(viewer_args("tui", "--db", str(db)), env=ENV)
                screen = pane.wait_for(expected)
                assert "no data" in screen
                pane.keys("r")          # trying again is no crash either
                time.sleep(0.3)
                pane.keys("q")
                pane.wait_for("EXITED 0")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
