"""The user's mute list: one small TOML file that `netwarden mute`, the TUI and the notifier share.

The file (default ``$XDG_CONFIG_HOME/netwarden/mutes.toml``, i.e. ``~/.config/netwarden/``)
looks like::

    programs = ["/usr/bin/curl", "firefox-esr"]
    kinds = ["device_changed"]

A program entry with a ``/`` matches the executable's path exactly; one without matches the
program's name. Editors go through :func:`add_mutes` and :func:`remove_mutes`, which lock the
file (flock on a ``.lock`` beside it), read, change and replace it atomically, so two editors
never lose each other's change and the notifier never reads half a file. The notifier reloads
the file when its modification time changes, and adds the ``mute_programs``/``mute_kinds`` of
the ``[notifier]`` config section.

API for other parts (the TUI):

    path = default_mutes_path()
    mutes = load_mutes(path)                      # Mutes(programs=..., kinds=...)
    add_mutes(path, programs=["/usr/bin/curl"])   # returns the new Mutes
    remove_mutes(path, kinds=["device_changed"])
    mutes.silences(kind, path, name)              # would this be muted?
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from netwarden.model.kinds import MUTABLE_KINDS
from netwarden.user_dirs import config_dir

_HEADER = ("# netwarden mutes: programs (a path, or a name without '/') and event kinds that\n"
           "# never raise a notification. Edited by `netwarden mute` / `netwarden unmute` and\n"
           "# the TUI; editing by hand is fine too.\n")


class MuteFileError(ValueError):
    """The mute file cannot be read or written; the message names the file and the problem."""


class UnknownKind(ValueError):
    """A kind that cannot be muted (not one of MUTABLE_KINDS)."""


@dataclass(frozen=True)
class Mutes:
    programs: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()

    def silences(self, kind: str, path: str = "", name: str = "") -> bool:
        """True when a notice of ``kind`` about program ``path``/``name`` must not be shown."""
        if kind in self.kinds:
            return True
        return bool(path and path in self.programs or name and name in self.programs)

    def union(self, other: "Mutes") -> "Mutes":
        return Mutes(self.programs | other.programs, self.kinds | other.kinds)


def default_mutes_path(env: Mapping[str, str] | None = None) -> Path:
    return config_dir(env) / "mutes.toml"


def check_kinds(kinds: Iterable[str]) -> None:
    for kind in kinds:
        if kind not in MUTABLE_KINDS:
            raise UnknownKind(f"{kind!r} is not a kind that can be muted; known: "
                              + ", ".join(MUTABLE_KINDS))


def _strings(path: Path, data: dict[str, object], key: str) -> frozenset[str]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise MuteFileError(f"{path}: {key} = {value!r}: must be a list of non-empty strings")
    return frozenset(value)


def load_mutes(path: Path) -> Mutes:
    """The mutes in ``path``; a missing file is an empty list."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Mutes()
    except OSError as exc:
        raise MuteFileError(f"{path}: cannot be read: {exc.strerror}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise MuteFileError(f"{path}: not valid TOML: {exc}") from None
    unknown = set(data) - {"programs", "kinds"}
    if unknown:
        raise MuteFileError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; "
                            "known: programs, kinds")
    return Mutes(_strings(path, data, "programs"), _strings(path, data, "kinds"))


def _toml_list(values: Iterable[str]) -> str:
    # JSON strings without ASCII escaping are valid TOML basic strings (json escapes only
    # quotes, backslashes and control characters, all in the forms TOML accepts).
    items = [json.dumps(v, ensure_ascii=False) for v in sorted(values)]
    if not items:
        return "[]"
    return "[\n" + "".join(f"    {item},\n" for item in items) + "]"


def render_mutes(mutes: Mutes) -> str:
    return (f"{_HEADER}programs = {_toml_list(mutes.programs)}\n"
            f"kinds = {_toml_list(mutes.kinds)}\n")


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = os.open(str(path) + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise MuteFileError(f"{path}: cannot be locked: {exc.strerror}") from None
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
    finally:
        os.close(lock)


def _replace(path: Path, mutes: Mutes) -> None:
    try:
        fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".mutes-", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(render_mutes(mutes))
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except OSError as exc:
        raise MuteFileError(f"{path}: cannot be written: {exc.strerror}") from None


def _edit(path: Path, programs: Iterable[str], kinds: Iterable[str], add: bool) -> Mutes:
    programs, kinds = list(programs), list(kinds)
    check_kinds(kinds)
    if any(not p for p in programs):
        raise MuteFileError(f"{path}: an empty program name cannot be muted")
    with _locked(path):
        current = load_mutes(path)
        change = Mutes(frozenset(programs), frozenset(kinds))
        if add:
            new = current.union(change)
        else:
            new = Mutes(current.programs - change.programs, current.kinds - change.kinds)
        if new != current or not path.exists():
            _replace(path, new)
        return new


def add_mutes(path: Path, programs: Iterable[str] = (), kinds: Iterable[str] = ()) -> Mutes:
    """Mute programs and/or kinds; returns the whole list as saved."""
    return _edit(path, programs, kinds, add=True)


def remove_mutes(path: Path, programs: Iterable[str] = (), kinds: Iterable[str] = ()) -> Mutes:
    """Unmute programs and/or kinds (absent entries are fine); returns the list as saved."""
    return _edit(path, programs, kinds, add=False)
