"""The fanotify watch itself: each kind of change to a watched file is reported."""

from __future__ import annotations

import os
import time
from pathlib import Path

from netwarden.sensor.fanotify import (
    FAN_ATTRIB, FAN_DELETE_SELF, FAN_MODIFY, ExecutableWatch, FileChange,
)


def wait_for(changes: list[FileChange], count: int = 1) -> list[FileChange]:
    deadline = time.time() + 5
    while len(changes) < count and time.time() < deadline:
        time.sleep(0.05)
    return list(changes)


def test_modify_chmod_replace_and_delete(tmp_path: Path):
    changes: list[FileChange] = []
    watch = ExecutableWatch(changes.append)
    watch.start()
    try:
        prog = tmp_path / "prog"
        prog.write_bytes(b"\x7fELF" + bytes(100))
        st = os.stat(prog)
        assert watch.watch(str(prog), st.st_dev, st.st_ino)
        assert not watch.watch(str(prog), st.st_dev, st.st_ino + 1), "wrong inode refused"

        with open(prog, "ab") as handle:
            handle.write(b"more")
        seen = wait_for(changes)
        assert seen and seen[0].mask & FAN_MODIFY and (seen[0].dev, seen[0].ino) == \
            (st.st_dev, st.st_ino)
        changes.clear()

        os.chmod(prog, 0o700)
        assert wait_for(changes)[0].mask & FAN_ATTRIB
        changes.clear()

        staged = tmp_path / "prog.new"
        staged.write_bytes(b"v2")
        staged.rename(prog)                  # the old inode is unlinked
        replaced = wait_for(changes)
        assert replaced[-1].deleted and replaced[-1].path == str(prog)
        assert watch.watched() == 0
        changes.clear()

        st2 = os.stat(prog)
        assert watch.watch(str(prog), st2.st_dev, st2.st_ino)
        prog.unlink()
        assert wait_for(changes)[-1].mask & FAN_DELETE_SELF
    finally:
        watch.stop()
