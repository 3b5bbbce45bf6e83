"""The notifier with a real, third-party notification daemon: Debian's dunst under Xvfb."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.dbus_session import start_session_bus
from tests.support.dunst import start_dunst
from tests.support.notifier_run import (
    RunningNotifier, add_events, config, create_db, new_program, wait_until,
)


def test_dunst_shows_the_burst_summary_and_escaped_names(tmp_path: Path):
    bus = start_session_bus(tmp_path / "bus")
    dunst = None
    try:
        dunst = start_dunst(tmp_path / "dunst", bus.address)
        from netwarden.notify.desktop import DesktopChannel
        db = tmp_path / "netwarden.db"
        create_db(db)
        odd = ("new_executable", {"path": "/opt/a&b/<i>x</i>", "name": "<i>x</i>",
                                  "sha256": "b" * 64, "uid": 0})
        trouble = ("sensor_error", {"component": "net/count_send", "state": "failed",
                                    "required": True, "message": "attach: EPERM"})
        add_events(db, [odd, trouble] + [new_program(i) for i in range(30)])
        with RunningNotifier(config(max_per_window=5), tmp_path,
                             [DesktopChannel(bus.address)]):
            wait_until(lambda: len(dunst.received()) >= 5, what="five notifications in dunst")
            time.sleep(1.0)
        got = dunst.received()
    finally:
        if dunst is not None:
            dunst.stop()
        bus.stop()
    assert len(got) == 5, got
    # dunst's script sees the body as sent: escaped, so dunst (markup = full) shows the
    # literal name instead of italics, and parses it without complaint.
    assert got[0] == ("netwarden", "NORMAL", "New program on the network",
                      "&lt;i&gt;x&lt;/i&gt; (/opt/a&amp;b/&lt;i&gt;x&lt;/i&gt;)|user 0, "
                      "sha256 bbbbbbbbbbbb…")
    assert "Unable to parse markup" not in (tmp_path / "dunst" / "dunst.log").read_text()
    assert got[1] == ("netwarden", "CRITICAL", "netwarden sensor trouble",
                      "net/count_send: failed|attach: EPERM")
    assert [g[2] for g in got[2:4]] == ["New program on the network"] * 2
    assert got[4][2:] == ("netwarden: 28 more notifications",
                          "28 new programs: prog2, prog3, prog4, prog5, prog6, …")
