"""The TUI's mute key, as root with --user NAME: the user's own mutes file, as the notifier
reads it (tmux, a real user with a home, the real mutes module)."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from netwarden.mutes import load_mutes
from tests.support.users import temporary_user
from tests.support.viewer_data import seed_store
from tests.support.viewer_proc import share, tmux_pane, viewer_dir

READING = "reading the store"


@pytest.fixture
def store() -> Iterator[Path]:
    with viewer_dir("nwv-tuimute-") as directory:
        seed_store(directory / "nw.db", int(time.time()))
        share(directory / "nw.db")
        yield directory / "nw.db"


def test_m_mutes_the_selected_program_for_the_user_and_undoes(store: Path):
    # Root's own XDG_CONFIG_HOME must not be where the user's mutes go.
    roots_config = store.parent / "roots-config"
    roots_config.mkdir()
    with temporary_user("nwtui") as user, tmux_pane("tuimute") as pane:
        # A reader of a WAL store creates its -shm file beside it (docs/design-notes.md).
        os.chown(store.parent, user.pw_uid, user.pw_gid)
        mutes_file = Path(user.pw_dir) / ".config" / "netwarden" / "mutes.toml"
        pane.start([sys.executable, "-m", "netwarden", "tui", "--db", str(store), "--user",
                    user.pw_name], env={"TZ": "UTC", "XDG_CONFIG_HOME": str(roots_config)})
        pane.wait_for("4 entries", unless=READING)
        pane.keys("Down", "Down", "Down")
        assert "> /usr/bin/curl" in pane.wait_for("> /usr/bin/curl")
        pane.keys("m")
        pane.wait_for("muted /usr/bin/curl for the notifier")

        mutes = load_mutes(mutes_file)
        assert mutes.programs == {"/usr/bin/curl"}
        assert mutes.silences("new_executable", "/usr/bin/curl", "curl")
        assert not mutes.silences("new_executable", "/usr/lib/firefox/firefox", "firefox")
        assert mutes_file.stat().st_uid == user.pw_uid
        assert list(roots_config.iterdir()) == []

        # M lists the mutes; m there unmutes the selected entry.
        pane.keys("M")
        listed = pane.wait_for("netwarden: notifier mutes")
        assert str(mutes_file) in listed and "> program  /usr/bin/curl" in listed
        pane.keys("m")
        pane.wait_for("nothing is muted")
        assert load_mutes(mutes_file).programs == frozenset()

        # Back in the traffic view, m on a muted program unmutes it.
        pane.keys("M")
        pane.wait_for("> /usr/bin/curl", unless=READING)
        pane.keys("m")
        pane.wait_for("muted /usr/bin/curl for the notifier")
        assert load_mutes(mutes_file).silences("exe_modified", "/usr/bin/curl")
        pane.keys("m")
        pane.wait_for("unmuted /usr/bin/curl: the notifier shows it again")
        assert not load_mutes(mutes_file).silences("exe_modified", "/usr/bin/curl")
        pane.keys("q")
        pane.wait_for("EXITED 0")
