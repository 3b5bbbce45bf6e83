"""Read netwarden's unit files the way the tests need them: settings, and the sandbox they ask
for, rebuilt with setpriv so a test runs a process with exactly a unit's privileges.

Only what setpriv and prctl can reproduce outside systemd is rebuilt: the user, the
capability bounding set and ambient capabilities, no_new_privs and MemoryDenyWriteExecute
(PR_SET_MDWE, kernel >= 6.3). The rest of the sandbox (namespaces, the system call filter)
needs systemd itself.
"""

from __future__ import annotations

import pwd
import sys
from pathlib import Path

UNITS_DIR = Path(__file__).resolve().parents[2] / "systemd"
UNIT_NAMES = ("netwarden-sensor.service", "netwarden-dash.service",
              "netwarden-notifier.service", "netwarden-discovery.service",
              "netwarden-sink.service")

# exec the rest of argv with PR_SET_MDWE(PR_MDWE_REFUSE_EXEC_GAIN), which execve keeps.
_MDWE_EXEC = """
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
if libc.prctl(65, 1, 0, 0, 0) != 0:
    sys.exit("PR_SET_MDWE: " + os.strerror(ctypes.get_errno()))
os.execvp(sys.argv[1], sys.argv[1:])
"""


def unit_settings(path: Path) -> dict[str, list[str]]:
    """``Section.Key`` -> its values in order; an empty assignment resets, as in systemd."""
    settings: dict[str, list[str]] = {}
    section = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
            continue
        key, _, value = line.partition("=")
        name = f"{section}.{key.strip()}"
        if value.strip():
            settings.setdefault(name, []).append(value.strip())
        else:
            settings[name] = []
    return settings


def capability_bounding_set(path: Path) -> list[str]:
    """The unit's CapabilityBoundingSet= (allow-list form), as setpriv names: ``sys_admin``."""
    values = unit_settings(path).get("Service.CapabilityBoundingSet", [])
    if any(value.startswith("~") for value in values):
        raise ValueError(f"{path.name}: a deny-list CapabilityBoundingSet is not supported here")
    return [cap.removeprefix("CAP_").lower() for value in values for cap in value.split()]


def _cap_list(names: list[str]) -> str:
    return ",".join(["-all", *(f"+{cap}" for cap in names)])


def sandbox_prefix(path: Path, without: str | None = None,
                   account: pwd.struct_passwd | None = None) -> list[str]:
    """A command prefix that runs a program with the unit's privileges, started as root: its
    user (``account`` stands in for the unit's User=, which tests do not create), only the
    unit's capability bounding set (root's permitted and effective sets become exactly that
    at execve), its AmbientCapabilities (inheritable and ambient; none for root),
    no_new_privs when the unit sets it, and PR_SET_MDWE when it sets MemoryDenyWriteExecute.
    ``without``: one capability of the bounding set left out."""
    settings = unit_settings(path)
    kept = [cap for cap in capability_bounding_set(path) if cap != without]
    prefix = ["setpriv", f"--bounding-set={_cap_list(kept)}"]
    if "Service.User" in settings:
        if account is None:
            raise ValueError(f"{path.name} runs as User={settings['Service.User'][0]}: "
                             "pass the account that stands in for it")
        prefix += [f"--reuid={account.pw_uid}", f"--regid={account.pw_gid}", "--clear-groups"]
    ambient = [cap.removeprefix("CAP_").lower()
               for value in settings.get("Service.AmbientCapabilities", [])
               for cap in value.split()]
    prefix += [f"--inh-caps={_cap_list(ambient)}", f"--ambient-caps={_cap_list(ambient)}"]
    if settings.get("Service.NoNewPrivileges") == ["yes"]:
        prefix.append("--no-new-privs")
    prefix.append("--")
    if settings.get("Service.MemoryDenyWriteExecute") == ["yes"]:
        prefix += [sys.executable, "-c", _MDWE_EXEC]
    return prefix
