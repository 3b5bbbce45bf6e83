"""Viewers never run as root: refuse, or become a named user before touching anything.

The database records who talked to whom, and a viewer parses what others wrote into it, so
it runs as an ordinary user who may read the store (a member of the `netwarden` group).
Started as root it needs `--user NAME`: it takes that user's ids and groups, proves it
cannot get root back, and only then opens the database.
"""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

from netwarden.exits import EXIT_NOPERM, EXIT_NOUSER



class PrivilegeError(RuntimeError):
    """Why a viewer will not run as it was started; `status` is its exit status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RunAs:
    name: str
    uid: int
    gid: int
    home: str


def resolve_user(name: str) -> RunAs:
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise PrivilegeError(f"--user {name}: no such user", EXIT_NOUSER) from None
    if entry.pw_uid == 0:
        raise PrivilegeError(f"--user {name}: that is root; name an ordinary user (a member "
                             "of the 'netwarden' group)", EXIT_NOPERM)
    return RunAs(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)


def become_unprivileged(program: str, user: str | None) -> None:
    """Return only when this process is not root (and, with `user`, is that user)."""
    if os.geteuid() != 0:
        if user is not None and pwd.getpwuid(os.geteuid()).pw_name != user:
            raise PrivilegeError(f"{program}: --user {user} needs root to switch user; "
                                 "run it as that user instead", EXIT_NOPERM)
        return
    if user is None:
        raise PrivilegeError(
            f"{program}: viewers do not run as root. Run it as a member of the 'netwarden' "
            "group, or pass --user NAME to drop to that user before the database is opened",
            EXIT_NOPERM)
    target = resolve_user(user)
    os.initgroups(target.name, target.gid)
    os.setgid(target.gid)
    os.setuid(target.uid)
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:  # pragma: no cover - only on a kernel that ignores setuid semantics
        raise PrivilegeError(f"{program}: could not drop root (setuid(0) still works)",
                             EXIT_NOPERM)
    # Root's XDG_* directories are not the user's: without them the user's files (the TUI
    # writes the mute list to $XDG_CONFIG_HOME or ~/.config) are found under their HOME.
    for name in [n for n in os.environ if n.startswith("XDG_")]:
        del os.environ[name]
    os.environ.update(HOME=target.home, USER=target.name, LOGNAME=target.name)
