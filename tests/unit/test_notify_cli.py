"""The notifier's commands: exit statuses and output (no services needed)."""

from __future__ import annotations

import getpass
import os
from pathlib import Path

import pytest

from netwarden.cli import main


def test_mute_unmute_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    path = tmp_path / "mutes.toml"
    assert main(["mute", "--file", str(path), "/usr/bin/curl", "--kind", "new_device"]) == 0
    assert main(["mute", "--file", str(path), "firefox"]) == 0
    capsys.readouterr()
    assert main(["mute", "--file", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"# {path}", "program /usr/bin/curl", "program firefox", "kind new_device"]
    assert main(["unmute", "--file", str(path), "firefox", "--kind", "new_device"]) == 0
    assert capsys.readouterr().out.splitlines() == [f"# {path}", "program /usr/bin/curl"]


def test_mute_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    with pytest.raises(SystemExit) as info:
        main(["mute", "--file", str(tmp_path / "m.toml"), "--kind", "sensor_started"])
    assert info.value.code == 2                     # argparse: not one of the kinds
    broken = tmp_path / "broken.toml"
    broken.write_text("programs = [")
    assert main(["mute", "--file", str(broken), "x"]) == 74
    assert "not valid TOML" in capsys.readouterr().err


def test_reports_without_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    for command in (["deliveries"], ["verdicts"], ["notifier", "--status"]):
        assert main(command + ["--state", str(tmp_path / "none.db")]) == 69
        assert "the notifier has not run" in capsys.readouterr().err
    assert not (tmp_path / "none.db").exists()


def test_root_needs_a_user_and_users_cannot_serve_others(capsys: pytest.CaptureFixture[str]):
    if os.geteuid() == 0:
        assert main(["notifier"]) == 77
        assert "refusing to run as root" in capsys.readouterr().err
        assert main(["notifier", "--user", "root"]) == 77
        assert "that is root" in capsys.readouterr().err
        assert main(["notifier", "--user", "no-such-user-nw"]) == 77
        assert "no such user" in capsys.readouterr().err
    else:
        other = "root" if getpass.getuser() != "root" else "nobody"
        assert main(["notifier", "--user", other]) == 77
        assert "only root can serve another user" in capsys.readouterr().err
