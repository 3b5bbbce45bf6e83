"""Where pinned sets live and when one is reused (netwarden/sensor/pinning.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from netwarden.sensor.pinning import PinPlace, ensure_bpffs, object_version, remove_pinned


def test_each_store_has_its_own_place(tmp_path: Path):
    a = PinPlace.for_store("/sys/fs/bpf/netwarden", tmp_path / "a.db")
    b = PinPlace.for_store("/sys/fs/bpf/netwarden", tmp_path / "b.db")
    again = PinPlace.for_store("/sys/fs/bpf/netwarden", tmp_path / "x" / ".." / "a.db")
    assert a != b and a == again  # by the real path
    assert a.base.parent == Path("/sys/fs/bpf/netwarden")
    assert "." not in a.directory("net", "0123").name.replace("net-", "")


def test_the_version_follows_the_object_and_its_settings(tmp_path: Path):
    obj = tmp_path / "net.bpf.o"
    obj.write_bytes(b"one")
    first = object_version(str(obj), "settings")
    assert object_version(str(obj), "settings") == first
    assert object_version(str(obj), "other settings") != first
    obj.write_bytes(b"two")
    assert object_version(str(obj), "settings") != first


def test_versions_and_removal(tmp_path: Path):
    place = PinPlace(tmp_path / "store")
    for version in ("aaa", "bbb"):
        for part in ("maps", "links"):
            (place.directory("net", version) / part).mkdir(parents=True)
            (place.directory("net", version) / part / "x").write_text("")
    assert [p.name for p in place.versions("net")] == ["net-aaa", "net-bbb"]
    remove_pinned(place.directory("net", "aaa"))
    assert [p.name for p in place.versions("net")] == ["net-bbb"]
    assert place.remove_all() == ["net-bbb"]
    assert not place.base.exists() and place.versions("net") == []


def test_a_pin_root_off_bpffs_is_refused_with_the_mounts_named(tmp_path: Path):
    (tmp_path / "mounts").write_text("bpf /sys/fs/bpf bpf rw 0 0\n"
                                     "tmpfs /tmp tmpfs rw 0 0\n")
    with pytest.raises(OSError, match=r"pin_root '/tmp/x' is not on a bpf filesystem "
                                      r"\(mounted: /sys/fs/bpf\)"):
        ensure_bpffs("/tmp/x", proc_root=str(tmp_path))
