"""Dropping root for good before the notifier touches a user's session.

``netwarden notifier`` refuses to run as root unless ``--user NAME`` says whose session it
serves. Then, before any third-party module (jeepney, paho) is imported and before any user
file is read, it takes that user's groups, gid and uid (real, effective and saved), sets
no_new_privs, and proves the drop: ``os.setuid(0)`` must fail.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import sys

#: Third-party modules the notifier uses; none may be loaded while root.
THIRD_PARTY = ("jeepney", "paho")

_PR_SET_NO_NEW_PRIVS = 38


class PrivilegeError(RuntimeError):
    """The drop was refused or could not be proven; the notifier must not go on."""


def _no_new_privs() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise PrivilegeError(f"prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}")


def prove_unprivileged() -> None:
    """Raise PrivilegeError unless setuid(0) and setgid(0) both fail."""
    for name, call in (("setuid", os.setuid), ("setgid", os.setgid)):
        try:
            call(0)
        except PermissionError:
            continue
        raise PrivilegeError(f"{name}(0) succeeded after dropping privileges")


def user_environment(account: pwd.struct_passwd, bus: str | None) -> dict[str, str]:
    """The environment of the user's session, replacing root's (HOME, XDG_*, the bus)."""
    runtime = f"/run/user/{account.pw_uid}"
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("XDG_") and k not in ("DBUS_SESSION_BUS_ADDRESS", "MAIL")}
    env.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name,
               SHELL=account.pw_shell, XDG_RUNTIME_DIR=runtime,
               DBUS_SESSION_BUS_ADDRESS=bus or f"unix:path={runtime}/bus")
    return env


def drop_privileges(user: str, bus: str | None = None) -> pwd.struct_passwd:
    """Become ``user`` for good (process-wide; call before starting threads)."""
    try:
        account = pwd.getpwnam(user)
    except KeyError:
        raise PrivilegeError(f"--user {user}: no such user") from None
    if account.pw_uid == 0:
        raise PrivilegeError(f"--user {user}: that is root; name the desktop user to serve")
    loaded = [name for name in THIRD_PARTY if name in sys.modules]
    if loaded:
        raise PrivilegeError(f"{', '.join(loaded)} imported while root; refusing to go on")
    env = user_environment(account, bus)
    os.initgroups(account.pw_name, account.pw_gid)
    os.setresgid(account.pw_gid, account.pw_gid, account.pw_gid)
    os.setresuid(account.pw_uid, account.pw_uid, account.pw_uid)
    _no_new_privs()
    prove_unprivileged()
    os.environ.clear()
    os.environ.update(env)
    try:
        os.chdir(account.pw_dir)
    except OSError:
        os.chdir("/")
    return account
