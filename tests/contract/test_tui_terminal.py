"""`netwarden tui` in a real terminal (tmux), unprivileged, on a seeded store."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.device_data import HUE, PHONE, PI, seed_devices, store_before_discovery
from tests.support.viewer_data import seed_store
from tests.support.watch_data import seed_watch
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


@pytest.fixture
def device_store() -> Iterator[Path]:
    """Traffic, and LAN devices with presence windows, in one store."""
    with viewer_dir("nwv-tuidev-") as directory:
        db = directory / "nw.db"
        now = int(time.time())
        seed_store(db, now)
        seed_devices(db, now)
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


def device_rows(screen: str) -> list[tuple[str, str]]:
    """(flags, MAC) of each row of the devices table."""
    lines = screen.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("  FLAG MAC"))
    rows = []
    for line in lines[header + 1:]:
        if not line.strip() or line.startswith("--"):
            break
        flags, mac = line[2:6].strip(), line[7:24]
        rows.append((flags, mac))
    return rows


def test_devices_view_table_details_and_presence(device_store: Path):
    with tmux_pane("tuidev") as pane:
        pane.start(viewer_args("tui", "--db", str(device_store)), env=ENV)
        pane.wait_for("/usr/bin/curl", unless=READING)
        pane.keys("d")
        devices = pane.wait_for("3 recorded, 2 here now", unless=READING)
        assert devices.splitlines()[0].startswith("netwarden: devices |")
        assert "presence: last day" in devices
        assert device_rows(devices) == [("R*", PHONE), ("KT*", PI), ("", HUE)]
        assert f"-- {PHONE} ---" in devices and "open ports: not probed" in devices

        pane.keys("Down")
        pi = pane.wait_for(f"-- kitchen pi ({PI}) ---")
        assert f"> KT*  {PI} 10.78.0.11      Raspberry Pi Foundati~ kitchen pi" in pi
        assert 'status: here now | known as "kitchen pi", trusted' in pi
        assert "names: raspi.local (mdns)" in pi
        assert "type: single-board computer (vendor Raspberry Pi Foundation)" in pi
        assert "open ports: 22, 80 | addresses: 10.78.0.11 | eth0" in pi
        (bar,) = [line for line in pi.splitlines() if line.startswith("kitchen pi  ")]
        # Here 20 h to 14 h ago and for the last two hours: two runs of lit cells.
        runs = [run for run in bar[21:].split(".") if run]
        assert set("".join(runs)) == {"#"} and len(runs) == 2 and bar.endswith("#")

        pane.keys("Down")
        hue = pane.wait_for(f"-- Hue Bridge ({HUE}) ---")
        assert "status: not here now" in hue and "open ports: 80, 443" in hue

        pane.keys("t")
        week = pane.wait_for("presence: last week", unless=READING)
        assert f"-- Hue Bridge ({HUE}) ---" in week     # the selection stays

        pane.keys("d")
        traffic = pane.wait_for("netwarden: executable", unless=READING)
        assert rows_of(traffic)[-1] == "/usr/bin/curl"
        pane.keys("q")
        pane.wait_for("EXITED 0")


def test_devices_view_on_stores_without_devices(store: Path):
    """A store without devices, and one from before discovery, are explained, not a crash."""
    old = store.parent / "old.db"
    store_before_discovery(old, int(time.time()))
    share(old)
    for db, expected in ((store, "no LAN devices recorded yet"),
                         (old, "no LAN discovery tables yet")):
        with tmux_pane("tuinodev") as pane:
            pane.start(viewer_args("tui", "--db", str(db)), env=ENV)
            pane.wait_for("netwarden: executable", unless=READING)
            pane.keys("d")
            screen = pane.wait_for(expected, unless=READING)
            assert screen.splitlines()[0].startswith("netwarden: devices")
            pane.keys("r", "t", "Down")     # reading again, another range, moving: no crash
            pane.wait_for(expected, unless=READING)
            pane.keys("d")
            pane.wait_for("netwarden: executable", unless=READING)
            pane.keys("q")
            pane.wait_for("EXITED 0")


def test_a_mute_that_cannot_be_saved_is_a_message_not_a_crash(store: Path):
    # Run as root, the viewer is `nobody`, whose home (/nonexistent) does not exist; run as
    # anyone else, XDG_CONFIG_HOME points where no directory can be made.
    env = dict(ENV, XDG_CONFIG_HOME="/proc/netwarden-test-nowhere")
    with tmux_pane("tuimutefail") as pane:
        pane.start(viewer_args("tui", "--db", str(store)), env=env)
        pane.wait_for("4 entries", unless=READING)
        pane.keys("m")
        failed = pane.wait_for("cannot change the mutes:")
        assert "mutes.toml" in failed
        pane.keys("g", "g", "g", "g", "g")          # remote address: nothing to mute
        pane.wait_for("REMOTE ADDRESS", unless=READING)
        pane.keys("m")
        pane.wait_for("m mutes a program: group by executable or name")
        pane.keys("M")
        listed = pane.wait_for("netwarden: notifier mutes")
        assert "nothing is muted" in listed   # a missing file is an empty list
        pane.keys("q")
        pane.wait_for("EXITED 0")


def test_units_from_the_config_are_the_web_pages(store: Path):
    """[view] units = "si" reaches the TUI through `netwarden tui --config` (the same key the
    web page reads: tests/contract/test_dash_look.py)."""
    config = store.parent / "si.toml"
    config.write_text('[view]\nunits = "si"\n')
    config.chmod(0o644)
    with tmux_pane("tuisi") as pane:
        pane.start(viewer_args("tui", "--db", str(store), "--config", str(config)), env=ENV)
        screen = pane.wait_for("/usr/bin/curl", unless=READING)
        firefox = next(line for line in screen.splitlines() if "firefox" in line)
        assert "50.0 kB" in firefox and "3.0 MB" in firefox, firefox   # 50,000 and 3,000,000
        assert "KiB" not in screen and "MiB" not in screen
        pane.keys("q")
        pane.wait_for("EXITED 0")


def test_connectivity_view(store: Path):
    """w shows the watch's targets (members under their group) and outages; a store without
    targets, and one from before the watch, are explained."""
    seed_watch(store, int(time.time()))
    share(store)
    with tmux_pane("tuiwatch") as pane:
        pane.start(viewer_args("tui", "--db", str(store)), env=ENV)
        pane.wait_for("/usr/bin/curl", unless=READING)
        pane.keys("w")
        screen = pane.wait_for("netwarden: connectivity | 4 targets and groups, 0 down",
                               unless=READING)
        targets = [line.split()[0] for line in screen.splitlines()[3:7]]
        assert targets == ["internet", "dns", "web", "gw"]     # members by name
        assert "    web              up" in screen
        assert "outages, last week: 5" in screen
        assert "gw                 " in screen and "10 min 0 s" in screen
        pane.keys("w")
        pane.wait_for("netwarden: executable", unless=READING)
        pane.keys("q")
        pane.wait_for("EXITED 0")
    old = store.parent / "old.db"
    store_before_discovery(old, int(time.time()))
    share(old)
    with tmux_pane("tuinowatch") as pane:
        pane.start(viewer_args("tui", "--db", str(old)), env=ENV)
        pane.wait_for("netwarden: executable", unless=READING)
        pane.keys("w")
        pane.wait_for("no watch tables yet", unless=READING)
        pane.keys("q")
        pane.wait_for("EXITED 0")
