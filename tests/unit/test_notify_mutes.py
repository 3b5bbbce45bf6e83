"""The mute list file: the API the CLI, the TUI and the notifier share."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from netwarden.mutes import (
    MuteFileError, Mutes, UnknownKind, add_mutes, default_mutes_path, load_mutes, remove_mutes,
)


def test_default_path_follows_xdg():
    assert default_mutes_path({"XDG_CONFIG_HOME": "/x"}) == Path("/x/netwarden/mutes.toml")
    assert default_mutes_path({"HOME": "/home/u"}) == Path("/home/u/.config/netwarden/mutes.toml")


def test_add_remove_and_load(tmp_path: Path):
    path = tmp_path / "sub" / "mutes.toml"
    assert load_mutes(path) == Mutes()
    odd = 'we"ird\\name ü'
    add_mutes(path, programs=["/usr/bin/curl", odd], kinds=["device_changed"])
    assert load_mutes(path) == Mutes(frozenset({"/usr/bin/curl", odd}),
                                     frozenset({"device_changed"}))
    assert remove_mutes(path, programs=[odd, "absent"]) == \
        Mutes(frozenset({"/usr/bin/curl"}), frozenset({"device_changed"}))
    assert "programs = [" in path.read_text()


def test_matching_by_path_name_and_kind():
    mutes = Mutes(frozenset({"/usr/bin/curl", "firefox"}), frozenset({"new_device"}))
    assert mutes.silences("new_executable", "/usr/bin/curl", "curl")
    assert mutes.silences("exe_modified", "/opt/firefox/firefox", "firefox")
    assert mutes.silences("new_device")
    assert not mutes.silences("new_executable", "/usr/local/bin/curl", "curl2")


def test_bad_input(tmp_path: Path):
    path = tmp_path / "mutes.toml"
    with pytest.raises(UnknownKind, match="'sensor_started' is not a kind that can be muted"):
        add_mutes(path, kinds=["sensor_started"])
    path.write_text("programs = 5\n")
    with pytest.raises(MuteFileError, match="programs = 5: must be a list"):
        load_mutes(path)
    path.write_text("programs = [\n")
    with pytest.raises(MuteFileError, match="not valid TOML"):
        load_mutes(path)
    path.write_text("devices = []\n")
    with pytest.raises(MuteFileError, match="unknown key"):
        load_mutes(path)


def test_concurrent_editors_lose_nothing(tmp_path: Path):
    path = tmp_path / "mutes.toml"
    threads = [threading.Thread(target=add_mutes, args=(path,), kwargs={"programs": [f"p{i}"]})
               for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert load_mutes(path).programs == {f"p{i}" for i in range(20)}
