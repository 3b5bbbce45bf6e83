"""Naming a file: when a (device, inode) from the kernel and one from stat() name the same
file, and which version of its content a file holds.

The kernel reports an executable's inode as its superblock knows it; stat() may report another
device for the very same file: overlayfs (every container image, and the kernel matrix's guest
root) shows the layer's device, btrfs the subvolume's. Both are anonymous devices (major 0).
So inode numbers must be equal, and devices too unless either side is an anonymous device.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Fingerprint:
    """A version of a file's content: a write changes its size or its times (ctime always,
    and no one can set ctime back), so an equal fingerprint means the same content."""

    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> "Fingerprint":
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def version_of(dev: int, ino: int, candidates: Iterable[str]) -> Fingerprint | None:
    """The fingerprint of the file (dev, ino) now, through the first candidate path that is
    that file (``/proc/PID/exe`` reaches it even when deleted or renamed over); None if none
    is."""
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if same_file(dev, ino, st.st_dev, st.st_ino) and stat.S_ISREG(st.st_mode):
            return Fingerprint.of(st)
    return None


def same_file(dev_a: int, ino_a: int, dev_b: int, ino_b: int) -> bool:
    if ino_a != ino_b:
        return False
    return dev_a == dev_b or os.major(dev_a) == 0 or os.major(dev_b) == 0
