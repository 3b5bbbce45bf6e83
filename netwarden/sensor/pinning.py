"""Where the net object's maps and links are pinned in bpffs, so counting outlives the sensor.

A pinned link keeps its program attached after the process that made it exits (kill -9, the
OOM killer, a package upgrade's restart), and pinned maps keep what it counted. Layout:

    <pin_root>/<store tag>/<object>-<version>/maps/<map name>
                                             /links/<program name>

The store tag is a hash of the database's real path: what the kernel counts belongs to the
store whose commit marker says what was taken (two sensors on two stores never share maps).
The version is a hash of the object file and everything set in it before load (read-only
globals, map sizes, hook set, BPF mode): a pinned set is reused only by a sensor that would
have built exactly the same one; any other is replaced (and what it held is reported lost).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from netwarden.config import DEFAULT_PIN_ROOT

log = logging.getLogger(__name__)

__all__ = ["DEFAULT_PIN_ROOT", "PinPlace", "ensure_bpffs", "object_version", "prune_empty",
           "remove_pinned"]
BPFFS_MAGIC_MOUNT = "/sys/fs/bpf"


@dataclass(frozen=True)
class PinPlace:
    """The pinned sets of one store: ``base`` holds one directory per object version."""

    base: Path

    @classmethod
    def for_store(cls, pin_root: str, db_path: Path) -> PinPlace:
        tag = hashlib.sha256(str(Path(db_path).resolve()).encode()).hexdigest()[:16]
        return cls(Path(pin_root) / tag)

    def directory(self, object_name: str, version: str) -> Path:
        return self.base / f"{object_name}-{version}"

    def versions(self, object_name: str) -> list[Path]:
        """Every pinned set of ``object_name`` under this store, whatever its version."""
        try:
            return sorted(p for p in self.base.iterdir()
                          if p.name.startswith(f"{object_name}-") and p.is_dir())
        except FileNotFoundError:
            return []

    def remove_all(self) -> list[str]:
        """Unpin every set of this store (programs detach, maps go); returns what went."""
        removed = []
        try:
            entries = sorted(self.base.iterdir())
        except FileNotFoundError:
            return []
        for directory in entries:
            if directory.is_dir():
                remove_pinned(directory)
                removed.append(directory.name)
        _rmdir_quietly(self.base)
        return removed


def object_version(object_file: str, settings: str) -> str:
    """A pinned set's version: the object's bytes and what the loader set in it."""
    digest = hashlib.sha256(Path(object_file).read_bytes())
    digest.update(settings.encode())
    return digest.hexdigest()[:16]


def remove_pinned(directory: Path) -> None:
    """Links first (their programs detach and stop writing), then the maps."""
    for part in ("links", "maps"):
        try:
            names = sorted(os.listdir(directory / part))
        except FileNotFoundError:
            continue
        for name in names:
            try:
                os.unlink(directory / part / name)
            except FileNotFoundError:
                pass
        _rmdir_quietly(directory / part)
    _rmdir_quietly(directory)


def prune_empty(directory: Path) -> None:
    """After a failed load (libbpf unpinned what it pinned): the directories it left, and
    the store's, if nothing else is in them."""
    for path in (directory / "maps", directory / "links", directory, directory.parent):
        try:
            os.rmdir(path)
        except OSError:
            pass


def _rmdir_quietly(path: Path) -> None:
    try:
        os.rmdir(path)
    except (FileNotFoundError, OSError) as exc:
        if not isinstance(exc, FileNotFoundError):
            log.warning("cannot remove %s: %s", path, exc)


def ensure_bpffs(pin_root: str, proc_root: str = "/proc") -> None:
    """Pins need a bpf filesystem under ``pin_root``: mount one at /sys/fs/bpf if none is.

    systemd mounts it at boot; a minimal VM or container may not.
    """
    root = os.path.realpath(pin_root)
    with open(os.path.join(proc_root, "mounts"), encoding="utf-8") as mounts:
        bpf_mounts = [line.split()[1] for line in mounts if line.split()[2:3] == ["bpf"]]
    if any(root == m or root.startswith(m.rstrip("/") + "/") for m in bpf_mounts):
        os.makedirs(root, exist_ok=True)
        return
    if not root.startswith(BPFFS_MAGIC_MOUNT + "/"):
        raise OSError(f"[sensor] pin_root {pin_root!r} is not on a bpf filesystem "
                      f"(mounted: {', '.join(bpf_mounts) or 'none'})")
    os.makedirs(BPFFS_MAGIC_MOUNT, exist_ok=True)
    done = subprocess.run(["mount", "-t", "bpf", "bpf", BPFFS_MAGIC_MOUNT],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise OSError(f"cannot mount a bpf filesystem at {BPFFS_MAGIC_MOUNT}: "
                      f"{done.stderr.strip() or done.returncode}")
    log.info("mounted a bpf filesystem at %s", BPFFS_MAGIC_MOUNT)
    os.makedirs(root, exist_ok=True)
