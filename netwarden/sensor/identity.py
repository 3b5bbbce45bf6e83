"""Who a pid is: executable path, script, name, command line, parent, user.

Filled from exec/fork/exit events as they happen (while /proc/PID still exists) and, for
processes that started before the sensor, from /proc on first use. The kernel tells us the
executable's device and inode with every flow; a path is only believed when a file at that
path (or /proc/PID/exe) is that same inode.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from netwarden.sensor import bpf_records as rec
from netwarden.sensor.collectors import ProcessEvent
from netwarden.sensor.containers import cgroup_path_from_proc
from netwarden.sensor.fileid import Fingerprint, same_file, version_of

log = logging.getLogger(__name__)

_DELETED_SUFFIX = " (deleted)"


@dataclass(frozen=True)
class ExeRef:
    """An executable as the kernel named it, with where its bytes can be read."""

    path: str
    dev: int
    ino: int
    # /proc/PID/exe while the process lived: where to read it, not part of its identity.
    proc_exe: str = field(default="", compare=False)
    # The content's version when the sensor first saw the process (None: not known): part
    # of its identity, so runs before and after a change are told apart and each is hashed
    # as the file was when it ran (hashing.py).
    version: Fingerprint | None = None

    def candidates(self) -> tuple[str, ...]:
        return tuple(p for p in (self.proc_exe, self.path) if p and not p.startswith("["))


@dataclass(frozen=True)
class ProcessRecord:
    pid: int
    ppid: int
    exe: ExeRef
    name: str
    cmdline: str
    uid: int
    script: ExeRef | None = None
    start_time_ns: int = 0
    exited_at: float | None = None
    cgroup: str | None = None   # cgroup path when last seen alive (None: unknown)


def unknown_exe_label(dev: int, ino: int) -> str:
    if ino == 0:
        return "[kernel]"
    return f"[unknown {os.major(dev)}:{os.minor(dev)} inode {ino}]"


class ProcFs:
    """Reads of /proc (root injectable so tests can use a fixture tree)."""

    def __init__(self, root: str = "/proc") -> None:
        self.root = root

    def path(self, pid: int, entry: str) -> str:
        return f"{self.root}/{pid}/{entry}"

    def exe(self, pid: int) -> tuple[str, int, int] | None:
        """(path, st_dev, st_ino) of the running executable, or None if gone."""
        link = self.path(pid, "exe")
        try:
            target = os.readlink(link)
            st = os.stat(link)
        except OSError:
            return None
        if target.endswith(_DELETED_SUFFIX):
            target = target[: -len(_DELETED_SUFFIX)]
        return target, st.st_dev, st.st_ino

    def cmdline(self, pid: int) -> str | None:
        try:
            with open(self.path(pid, "cmdline"), "rb") as handle:
                raw = handle.read(65536)
        except OSError:
            return None
        return " ".join(a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0"))

    def status(self, pid: int) -> dict[str, str] | None:
        try:
            with open(self.path(pid, "status"), encoding="utf-8", errors="replace") as handle:
                lines = handle.read().splitlines()
        except OSError:
            return None
        return {k: v.strip() for k, _, v in (line.partition(":") for line in lines)}

    def cgroup(self, pid: int) -> str | None:
        try:
            with open(self.path(pid, "cgroup"), encoding="utf-8") as handle:
                return cgroup_path_from_proc(handle.read())
        except OSError:
            return None

    def cwd(self, pid: int) -> str | None:
        try:
            return os.readlink(self.path(pid, "cwd"))
        except OSError:
            return None

    def exists(self, pid: int) -> bool:
        return os.path.exists(self.path(pid, "stat"))


class ProcessTable:
    """pid -> ProcessRecord, safe to use from the event thread and the drain thread."""

    def __init__(self, procfs: ProcFs, on_new_exe: Callable[[ExeRef], None] | None = None,
                 clock: Callable[[], float] = time.monotonic, exit_grace_s: float = 60.0) -> None:
        self._proc = procfs
        self._records: dict[int, ProcessRecord] = {}
        self._paths: dict[tuple[int, int], str] = {}   # (dev, ino) -> a path that was that file
        self._lock = threading.Lock()
        self._on_new_exe = on_new_exe or (lambda _ref: None)
        self._clock = clock
        self._grace = exit_grace_s

    # ---- events ----

    def on_event(self, event: ProcessEvent) -> None:
        if event.kind == rec.PROC_EXEC:
            self._on_exec(event)
        elif event.kind == rec.PROC_FORK:
            self._on_fork(event)
        elif event.kind == rec.PROC_EXIT:
            with self._lock:
                record = self._records.get(event.pid)
                if record and record.start_time_ns in (0, event.start_time_ns):
                    self._records[event.pid] = replace(record, exited_at=self._clock())

    def _on_exec(self, event: ProcessEvent) -> None:
        exe = self._resolve_exe(event.pid, event.exe_dev, event.exe_ino, event.filename,
                                event.ppid)
        cmdline = " ".join(event.argv)
        if event.argv_truncated or not cmdline:
            cmdline = self._proc.cmdline(event.pid) or cmdline
        record = ProcessRecord(
            pid=event.pid, ppid=event.ppid, exe=exe, name=event.comm, cmdline=cmdline,
            uid=event.uid, script=self._resolve_script(event, exe),
            start_time_ns=event.start_time_ns, cgroup=self._proc.cgroup(event.pid))
        with self._lock:
            self._records[event.pid] = record
        self._on_new_exe(exe)
        if record.script:
            self._on_new_exe(record.script)

    def _on_fork(self, event: ProcessEvent) -> None:
        with self._lock:
            parent = self._records.get(event.ppid)
            if parent is None:
                return  # resolved lazily from /proc when the child uses the network
            self._records[event.pid] = replace(
                parent, pid=event.pid, ppid=event.ppid, start_time_ns=event.start_time_ns,
                exe=replace(parent.exe, proc_exe=self._proc.path(event.pid, "exe")),
                exited_at=None)

    # ---- resolution ----

    def learn_paths(self, known: Iterable[tuple[str, int, int]]) -> None:
        """Paths earlier runs saw for (dev, ino): names a process that exited while no
        sensor ran (its bytes were counted by pinned programs), if the file is still there."""
        with self._lock:
            for path, dev, ino in known:
                self._paths.setdefault((dev, ino), path)

    def _remember_path(self, path: str, dev: int, ino: int) -> None:
        with self._lock:
            self._paths[(dev, ino)] = path

    def _known_path(self, dev: int, ino: int) -> str | None:
        with self._lock:
            return self._paths.get((dev, ino))

    def _absolute(self, filename: str, pids: tuple[int, ...]) -> str | None:
        if os.path.isabs(filename):
            return filename
        for pid in pids:
            cwd = self._proc.cwd(pid)
            if cwd:
                return os.path.normpath(os.path.join(cwd, filename))
        return None

    @staticmethod
    def _is_inode(path: str, dev: int, ino: int) -> bool:
        try:
            st = os.stat(path)
        except OSError:
            return False
        return same_file(dev, ino, st.st_dev, st.st_ino)

    def _resolve_exe(self, pid: int, dev: int, ino: int, filename: str = "",
                     ppid: int = 0) -> ExeRef:
        ref = self._named_exe(pid, dev, ino, filename, ppid)
        return replace(ref, version=version_of(dev, ino, ref.candidates()))

    def _named_exe(self, pid: int, dev: int, ino: int, filename: str, ppid: int) -> ExeRef:
        proc_exe = self._proc.path(pid, "exe")
        live = self._proc.exe(pid)
        if live and same_file(dev, ino, live[1], live[2]):
            self._remember_path(live[0], dev, ino)
            return ExeRef(live[0], dev, ino, proc_exe)
        known = self._known_path(dev, ino)
        if known and self._is_inode(known, dev, ino):
            return ExeRef(known, dev, ino, proc_exe)
        # The process is gone: the exec'd filename is the executable unless it was a script.
        candidate = self._absolute(filename, (pid, ppid)) if filename else None
        if candidate and self._is_inode(candidate, dev, ino):
            self._remember_path(candidate, dev, ino)
            return ExeRef(candidate, dev, ino, proc_exe)
        return ExeRef(known or unknown_exe_label(dev, ino), dev, ino, proc_exe)

    def _resolve_script(self, event: ProcessEvent, exe: ExeRef) -> ExeRef | None:
        """For `#!` scripts the exec'd file is the script and the inode is the interpreter."""
        if not event.filename:
            return None
        path = self._absolute(event.filename, (event.pid, event.ppid))
        if not path:
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        if same_file(exe.dev, exe.ino, st.st_dev, st.st_ino):
            return None
        return ExeRef(path, st.st_dev, st.st_ino, version=Fingerprint.of(st))

    def _from_proc(self, pid: int) -> ProcessRecord | None:
        live = self._proc.exe(pid)
        status = self._proc.status(pid)
        if status is None:
            return None
        if live:
            path, dev, ino = live
            self._remember_path(path, dev, ino)
            proc_exe = self._proc.path(pid, "exe")
            exe = ExeRef(path, dev, ino, proc_exe, version_of(dev, ino, (proc_exe, path)))
        else:
            exe = ExeRef("[kernel]", 0, 0)
        uid_field = status.get("Uid", "0").split()
        return ProcessRecord(
            pid=pid, ppid=int(status.get("PPid", "0") or 0), exe=exe,
            name=status.get("Name", ""), cmdline=self._proc.cmdline(pid) or "",
            uid=int(uid_field[0]) if uid_field else 0, cgroup=self._proc.cgroup(pid))

    def lookup(self, pid: int, dev: int | None = None, ino: int | None = None,
               uid: int | None = None) -> ProcessRecord:
        """The record for a pid whose executable is (dev, ino) when given."""
        with self._lock:
            record = self._records.get(pid)
        wanted = (dev, ino) if dev is not None and ino is not None else None
        if record and (wanted is None or same_file(*wanted, record.exe.dev, record.exe.ino)):
            return record
        fresh = self._from_proc(pid) if pid > 0 else None
        if fresh and (wanted is None or same_file(*wanted, fresh.exe.dev, fresh.exe.ino)):
            with self._lock:
                self._records[pid] = fresh
            self._on_new_exe(fresh.exe)
            return fresh
        if wanted is None:
            return record or fresh or ProcessRecord(pid, 0, ExeRef("[unknown]", 0, 0), "",
                                                    "", uid or 0)
        # The pid is gone or now runs something else: keep what we know, fix the executable.
        exe = self._resolve_exe(pid, wanted[0], wanted[1])
        base = record or fresh
        if base is None:
            return ProcessRecord(pid, 0, exe, "", "", uid or 0)
        return replace(base, exe=exe, script=None)

    def ancestors(self, record: ProcessRecord) -> tuple[ProcessRecord | None,
                                                        ProcessRecord | None]:
        parent = self.lookup(record.ppid) if record.ppid > 0 else None
        grandparent = self.lookup(parent.ppid) if parent and parent.ppid > 0 else None
        return parent, grandparent

    def expire(self) -> int:
        """Forget processes that exited more than the grace period ago; returns how many."""
        now = self._clock()
        with self._lock:
            gone = [pid for pid, r in self._records.items()
                    if r.exited_at is not None and now - r.exited_at > self._grace]
            for pid in gone:
                del self._records[pid]
        return len(gone)

    def sweep_dead(self) -> None:
        """Mark records whose process vanished without an exit event (e.g. events lost)."""
        with self._lock:
            live = [(pid, r) for pid, r in self._records.items() if r.exited_at is None]
        now = self._clock()
        for pid, record in live:
            if not self._proc.exists(pid):
                with self._lock:
                    self._records[pid] = replace(record, exited_at=now)

    def __len__(self) -> int:
        with self._lock:
            return len(self._records)
