"""Read netwarden's unit files the way the tests need them: settings, and the sandbox they ask
for, rebuilt with setpriv so a test runs a process with exactly a unit's privileges.

Only what setpriv and prctl can reproduce outside systemd is rebuilt: the user, the
capability bounding set and ambient capabilities, no_new_privs and MemoryDenyWriteExecute
(PR_SET_MDWE, kernel >= 6.3). The rest of the sandbox (namespaces, the system call filter)
needs systemd itself.
"""

from __future__ import annotations

import functools
import os
import pwd
import re
import signal
import subprocess
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
    user (``account`` stands in for the unit's User=, which tests do not create, or for the
    session user a user unit runs as), only the
    unit's capability bounding set (root's permitted and effective sets become exactly that
    at execve), its AmbientCapabilities (inheritable and ambient; none for root),
    no_new_privs when the unit sets it, and PR_SET_MDWE when it sets MemoryDenyWriteExecute.
    ``without``: one capability of the bounding set left out."""
    settings = unit_settings(path)
    kept = [cap for cap in capability_bounding_set(path) if cap != without]
    prefix = ["setpriv", f"--bounding-set={_cap_list(kept)}"]
    if "Service.User" in settings and account is None:
        raise ValueError(f"{path.name} runs as User={settings['Service.User'][0]}: "
                         "pass the account that stands in for it")
    if account is not None:       # User=, or a user unit's own user (the notifier's)
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


@functools.cache
def syscall_group(name: str) -> frozenset[str]:
    """The system calls of a systemd group (``@system-service``), nested groups expanded."""
    done = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True,
                          text=True, check=True)
    calls: set[str] = set()
    for line in done.stdout.splitlines()[1:]:
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        calls |= syscall_group(word) if word.startswith("@") else {word}
    return frozenset(calls)


def allowed_syscalls(path: Path) -> frozenset[str]:
    """What the unit's SystemCallFilter= allow-list permits, its ~ lines applied in order."""
    allowed: set[str] = set()
    for value in unit_settings(path).get("Service.SystemCallFilter", []):
        deny = value.startswith("~")
        names = set()
        for word in value.removeprefix("~").split():
            names |= syscall_group(word) if word.startswith("@") else {word}
        allowed = allowed - names if deny else allowed | names
    if not allowed:
        raise ValueError(f"{path.name} has no SystemCallFilter allow-list")
    return frozenset(allowed)


def traced_syscalls(strace_output: Path) -> set[str]:
    """The system calls an ``strace -f -o FILE`` run made (names as the kernel has them)."""
    pattern = re.compile(r"^\d+\s+(?:<\.\.\. )?([a-z0-9_]+)[( ]")
    calls = set()
    for line in strace_output.read_text().splitlines():
        found = pattern.match(line)
        if found and not line.split(None, 1)[1].startswith(("---", "+++")):
            calls.add(found.group(1))
    return calls


def strace_prefix(output: Path) -> list[str]:
    """Goes after sandbox_prefix: strace, inside the sandbox, records the program's calls."""
    return ["strace", "-f", "-qq", "-o", str(output)]


def stop_traced(proc: subprocess.Popen[str] | subprocess.Popen[bytes], timeout: float = 60
                ) -> int:
    """SIGTERM the program strace runs (the started pid is strace's; the program, its only
    child, stops on SIGTERM) and return its exit status, which strace passes on."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    (program,) = map(int, children)
    os.kill(program, signal.SIGTERM)
    return proc.wait(timeout=timeout)
