"""A throw-away system user with a home of its own, for tests of what root does for a user.

`nobody` (the viewers' usual test user) has no home, so nothing a viewer saves for its user
(the TUI's mute list) can be tested with it.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _account(command: list[str]) -> None:
    """useradd/userdel, tried again while another program holds /etc/passwd's lock."""
    for attempt in range(40):
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0:
            return
        if "lock" not in done.stderr or attempt == 39:
            raise RuntimeError(f"{' '.join(command)}: {done.stderr.strip()}")
        time.sleep(0.25)


def _pids_of(uid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and entry.stat().st_uid == uid:
                pids.append(int(entry.name))
        except FileNotFoundError:
            continue
    return pids


def _wait_for_exit(uid: int, grace_s: float = 5) -> None:
    """Wait until nothing runs as `uid`; after `grace_s`, SIGKILL what is left, by pid (the
    user was made for this test, so all its processes are the test's)."""
    deadline = time.monotonic() + grace_s
    while pids := _pids_of(uid):
        if time.monotonic() > deadline + grace_s:
            raise RuntimeError(f"processes of uid {uid} do not exit: {pids}")
        if time.monotonic() > deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        time.sleep(0.1)


@contextmanager
def temporary_user(prefix: str) -> Iterator[pwd.struct_passwd]:
    """A new system user (group nogroup, no login shell) whose home is a fresh directory;
    removed, with its home, afterwards. Needs root."""
    name = f"{prefix}{os.getpid()}"[:32]
    base = Path(tempfile.mkdtemp(prefix="nwtest-user-"))
    os.chmod(base, 0o755)
    home = base / "home"
    _account(["useradd", "--system", "--no-create-home", "--home-dir", str(home),
              "--shell", "/usr/sbin/nologin", "--gid", "nogroup", name])
    account = pwd.getpwnam(name)
    try:
        home.mkdir(mode=0o700)
        os.chown(home, account.pw_uid, account.pw_gid)
        yield account
    finally:
        _wait_for_exit(account.pw_uid)
        _account(["userdel", name])
        shutil.rmtree(base, ignore_errors=True)
