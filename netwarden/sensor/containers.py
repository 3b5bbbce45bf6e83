"""Which container a process runs in, from its cgroup path: one field for every runtime.

The value is ``runtime:id`` (the first 12 hex digits of a 64-digit container id) or
``runtime:name`` (systemd-nspawn machines, LXC containers); "" on the host. Nested containers
report the innermost one.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable

_ID = r"([0-9a-f]{64})"

#: (runtime label, pattern) in no particular order: every match is found and the innermost
#: (rightmost in the path) wins.
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("docker", re.compile(r"docker-" + _ID + r"\.scope")),
    ("docker", re.compile(r"/docker/" + _ID)),
    ("podman", re.compile(r"libpod-(?:conmon-)?" + _ID + r"\.scope")),
    ("podman", re.compile(r"/libpod_parent/libpod-" + _ID)),
    ("containerd", re.compile(r"cri-containerd-" + _ID + r"\.scope")),
    ("cri-o", re.compile(r"crio-(?:conmon-)?" + _ID + r"\.scope")),
    ("k8s", re.compile(r"/kubepods[^/]*(?:/[^/]+)*/pod[0-9a-f_-]+/" + _ID)),
    ("nspawn", re.compile(r"machine\.slice/machine-([^/]+)\.scope")),
    ("lxc", re.compile(r"/lxc\.payload\.([^/]+)")),
    ("lxc", re.compile(r"/lxc/([^/]+)")),
)


def _unescape_systemd(name: str) -> str:
    """systemd unit names escape bytes as \\xNN (a '-' in a machine name is \\x2d)."""
    return re.sub(r"\\x([0-9a-fA-F]{2})", lambda m: chr(int(m.group(1), 16)), name)


def container_from_cgroup(path: str) -> str:
    """``runtime:id`` for a cgroup path inside a container, "" for the host."""
    best: tuple[int, str] | None = None
    for runtime, pattern in _PATTERNS:
        for match in pattern.finditer(path):
            ident = match.group(1)
            if len(ident) == 64:
                ident = ident[:12]
            elif runtime == "nspawn":
                ident = _unescape_systemd(ident)
            if best is None or match.start() > best[0]:
                best = (match.start(), f"{runtime}:{ident}")
    return best[1] if best else ""


def cgroup_path_from_proc(text: str) -> str:
    """The cgroup v2 path from /proc/PID/cgroup, else the systemd v1 one, else any."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            paths[parts[1]] = parts[2]
    return paths.get("") or paths.get("name=systemd") or next(iter(paths.values()), "")


class ContainerResolver:
    """Container of a process: /proc/PID/cgroup while it lives, else its cgroup v2 id.

    The id -> path map is built by walking the cgroup2 tree (a directory's inode number is
    its cgroup id), again at most every ``rescan_s`` when an unknown id turns up.
    """

    def __init__(self, proc_root: str = "/proc", cgroup2_root: str | None = None,
                 clock: Callable[[], float] = time.monotonic, rescan_s: float = 2.0) -> None:
        self._proc = proc_root
        self._root = cgroup2_root
        self._clock = clock
        self._rescan_s = rescan_s
        self._paths: dict[int, str] = {}
        self._scanned_at = float("-inf")

    def container(self, pid: int, cgroup_id: int, last_known: str | None = None) -> str:
        """From the live process, else the path seen at its exec, else the cgroup id."""
        path = self._path_from_proc(pid)
        if path is None:
            path = last_known
        if path is None:
            path = self._path_from_id(cgroup_id)
        return container_from_cgroup(path or "")

    def _path_from_proc(self, pid: int) -> str | None:
        try:
            with open(f"{self._proc}/{pid}/cgroup", encoding="utf-8") as handle:
                return cgroup_path_from_proc(handle.read())
        except OSError:
            return None

    def _path_from_id(self, cgroup_id: int) -> str | None:
        if cgroup_id in self._paths or self._root is None:
            return self._paths.get(cgroup_id)
        if self._clock() - self._scanned_at >= self._rescan_s:
            self._scan()
        return self._paths.get(cgroup_id)

    def _scan(self) -> None:
        self._scanned_at = self._clock()
        root = self._root
        assert root is not None
        paths: dict[int, str] = {}
        for directory, _subdirs, _files in os.walk(root):
            try:
                ino = os.stat(directory).st_ino
            except OSError:
                continue
            paths[ino] = "/" + os.path.relpath(directory, root).lstrip(".")
        self._paths = paths
