"""The one privilege drop of every unprivileged process: the viewers, the notifier, the sink.

The database records who talked to whom, and these processes parse what others wrote into it
(or talk to a user's session, or to a remote server), so none of them runs as root. Started
as root, each needs ``--user NAME``. Then, before any third-party module is imported and
before any file of that user's is read, it takes the user's groups, gid and uid (real,
effective and saved: setresgid/setresuid), sets no_new_privs, and proves the drop:
``setuid(0)`` and ``setgid(0)`` must fail. A listed third-party module already imported
means something ran as root that must not have: the drop refuses.

- :func:`become_unprivileged` is the viewers' (and the sink's) entry: refuse root without
  ``--user`` (exit 77), an unknown user (67), root named as the user (77).
- :func:`drop_privileges` is the notifier's: it serves one desktop user's session, so it also
  takes that session's environment (XDG_RUNTIME_DIR, the D-Bus address) and home directory.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import sys

from netwarden.exits import EXIT_NOPERM, EXIT_NOUSER

#: Third-party modules of the unprivileged processes; none may be loaded while root.
THIRD_PARTY = ("jeepney", "paho",                                     # the notifier
               "dash", "flask", "werkzeug", "plotly", "pandas", "geoip2", "maxminddb",  # dash
               "pymysql", "psycopg")                                  # the sink's drivers

_PR_SET_NO_NEW_PRIVS = 38
_VIEWER_USER = "an ordinary user (a member of the 'netwarden' group)"


class PrivilegeError(RuntimeError):
    """Why a process will not run as it was started; `status` is its exit status."""

    def __init__(self, message: str, status: int = EXIT_NOPERM) -> None:
        super().__init__(message)
        self.status = status


def resolve_user(name: str, who: str = _VIEWER_USER) -> pwd.struct_passwd:
    """The account ``--user name`` names: not root, and existing (``who`` says whom to name)."""
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        raise PrivilegeError(f"--user {name}: no such user", EXIT_NOUSER) from None
    if account.pw_uid == 0:
        raise PrivilegeError(f"--user {name}: that is root; name {who}")
    return account


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


def drop_to(account: pwd.struct_passwd) -> None:
    """Become ``account`` for good (process-wide: call before starting threads)."""
    loaded = [name for name in THIRD_PARTY if name in sys.modules]
    if loaded:
        raise PrivilegeError(f"{', '.join(loaded)} imported while root; refusing to go on")
    os.initgroups(account.pw_name, account.pw_gid)
    os.setresgid(account.pw_gid, account.pw_gid, account.pw_gid)
    os.setresuid(account.pw_uid, account.pw_uid, account.pw_uid)
    _no_new_privs()
    prove_unprivileged()


def become_unprivileged(program: str, user: str | None) -> None:
    """Return only when this process is not root (and, with `user`, is that user)."""
    if os.geteuid() != 0:
        if user is not None and pwd.getpwuid(os.geteuid()).pw_name != user:
            raise PrivilegeError(f"{program}: --user {user} needs root to switch user; "
                                 "run it as that user instead")
        return
    if user is None:
        raise PrivilegeError(
            f"{program}: viewers do not run as root. Run it as a member of the 'netwarden' "
            "group, or pass --user NAME to drop to that user before the database is opened")
    account = resolve_user(user)
    try:
        drop_to(account)
    except PrivilegeError as exc:
        raise PrivilegeError(f"{program}: {exc}", exc.status) from None
    # Root's XDG_* directories are not the user's: without them the user's files (the TUI
    # writes the mute list to $XDG_CONFIG_HOME or ~/.config) are found under their HOME.
    for name in [n for n in os.environ if n.startswith("XDG_")]:
        del os.environ[name]
    os.environ.update(HOME=account.pw_dir, USER=account.pw_name, LOGNAME=account.pw_name)


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
    """Become ``user`` for good, in that user's session (the notifier's drop)."""
    account = resolve_user(user, who="the desktop user to serve")
    env = user_environment(account, bus)
    drop_to(account)
    os.environ.clear()
    os.environ.update(env)
    try:
        os.chdir(account.pw_dir)
    except OSError:
        os.chdir("/")
    return account
