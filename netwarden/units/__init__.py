"""netwarden's systemd files, written for one installation (`netwarden systemd install`).

The units in ``systemd/`` name ``/usr/local/bin/netwarden`` (where scripts/bootstrap links
it). A pip installation's `netwarden` lives elsewhere (a venv's bin/, /usr/local/bin, ~/.local
/bin): :func:`render` puts that path in each ExecStart. Beside the units go the accounts
(sysusers.d) and the store's directory (tmpfiles.d) they need, the same files the
distribution packages install under /usr/lib.

Every file written carries :data:`MARK` on its first line; uninstall removes only such files,
never a unit a distribution package or an administrator put there.
"""

from __future__ import annotations

import re
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path

#: The program the units in systemd/ start; render() replaces it.
TEMPLATE_EXECUTABLE = "/usr/local/bin/netwarden"
MARK = "# Written by `netwarden systemd install`; `netwarden systemd uninstall` removes it."
_EXEC_START = re.compile(r"^(ExecStart=)(\S+)(.*)$", re.MULTILINE)


class UnitsError(RuntimeError):
    """Why the files cannot be written or removed (a missing source, a bad path)."""


@dataclass(frozen=True)
class SystemdFile:
    """One file: its name in systemd/ and where an installation puts it (under a root)."""

    source: str
    target: str

    @property
    def is_unit(self) -> bool:
        return self.source.endswith(".service")


FILES = (
    SystemdFile("netwarden-sensor.service", "etc/systemd/system/netwarden-sensor.service"),
    SystemdFile("netwarden-dash.service", "etc/systemd/system/netwarden-dash.service"),
    SystemdFile("netwarden-discovery.service",
                "etc/systemd/system/netwarden-discovery.service"),
    SystemdFile("netwarden-sink.service", "etc/systemd/system/netwarden-sink.service"),
    # A user unit: each desktop user enables it for their own session.
    SystemdFile("netwarden-notifier.service", "etc/systemd/user/netwarden-notifier.service"),
    SystemdFile("netwarden.sysusers", "etc/sysusers.d/netwarden.conf"),
    SystemdFile("netwarden.tmpfiles", "etc/tmpfiles.d/netwarden.conf"),
)


def source_dir() -> Path:
    """Where this installation keeps the files: the wheel's copy (setup.py puts systemd/ in
    netwarden/units/files/), or, run from a source checkout, systemd/ itself."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "files", here.parent.parent / "systemd"):
        if (candidate / FILES[0].source).is_file():
            return candidate
    raise UnitsError(f"no unit files in {here / 'files'}: this netwarden was not installed "
                     "from its wheel or source tree")


def installed_executable() -> Path:
    """The `netwarden` script of the running interpreter's environment (its scripts dir)."""
    scripts = Path(sysconfig.get_path("scripts"))
    for candidate in (scripts / "netwarden", Path(sys.prefix) / "bin" / "netwarden"):
        if candidate.is_file():
            return candidate
    raise UnitsError(f"no netwarden executable in {scripts}: run `netwarden systemd install` "
                     "from an installed netwarden (pip install), or pass --executable")


def render(text: str, executable: Path) -> str:
    """The unit with ``executable`` as every ExecStart's program."""
    if not executable.is_absolute() or re.search(r"[\s\"'\\%$]", str(executable)):
        raise UnitsError(f"--executable {executable}: want an absolute path without spaces, "
                         "quotes, backslashes, % or $ (systemd would read them specially)")
    starts = _EXEC_START.findall(text)
    if not starts or any(program != TEMPLATE_EXECUTABLE for _, program, _ in starts):
        raise UnitsError(f"a unit's ExecStart does not start {TEMPLATE_EXECUTABLE}")
    return _EXEC_START.sub(lambda m: f"{m[1]}{executable}{m[3]}", text)


def rendered_files(executable: Path) -> dict[str, str]:
    """Target path (relative to the root) -> content, marked, for this installation."""
    directory = source_dir()
    contents = {}
    for item in FILES:
        text = (directory / item.source).read_text()
        if item.is_unit:
            text = render(text, executable)
        contents[item.target] = f"{MARK}\n{text}"
    return contents


def write_files(root: Path, executable: Path) -> list[Path]:
    """Write every file under ``root`` (mode 0644); the paths written."""
    written = []
    for target, text in rendered_files(executable).items():
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
        written.append(path)
    return written


def remove_files(root: Path) -> tuple[list[Path], list[Path]]:
    """Remove the files install wrote under ``root``: (removed, left because not ours)."""
    removed, foreign = [], []
    for item in FILES:
        path = root / item.target
        if not path.exists():
            continue
        if path.read_text().startswith(MARK + "\n"):
            path.unlink()
            removed.append(path)
        else:
            foreign.append(path)
    return removed, foreign
