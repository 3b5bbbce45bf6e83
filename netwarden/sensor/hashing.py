"""sha256 of executables, cached by (device, inode) and checked against the file on each use.

A cached hash is reused only while the file still has the same size, mtime and ctime (and, being
keyed by inode, the same inode); otherwise it is computed again. fanotify invalidates entries
as files change (:meth:`HashCache.invalidate`); the fingerprint check also catches what changed
while nobody watched (the sensor was down: the cache is persisted and reloaded).

Hashing runs in a worker thread fed by a bounded queue (prefetch at exec time, while
/proc/PID/exe still exists); :meth:`HashCache.sha256` computes in the caller's thread when the
prefetch has not happened.
"""

from __future__ import annotations

import hashlib
import logging
import os
import queue
import stat
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from netwarden.model import HashRecord
from netwarden.sensor.fileid import same_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Fingerprint:
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, st: os.stat_result) -> "Fingerprint":
        return cls(st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class HashedFile:
    sha256: str
    fingerprint: Fingerprint | None   # None: invalidated, hash again before trusting it
    path: str = ""


def hash_open_file(fd: int) -> str:
    with os.fdopen(os.dup(fd), "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _open_matching(dev: int, ino: int, candidates: Sequence[str]
                   ) -> tuple[int, os.stat_result, str]:
    """Open the first candidate that is the file (dev, ino); raise FileNotFoundError if none."""
    for path in candidates:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError:
            continue
        st = os.fstat(fd)
        if same_file(dev, ino, st.st_dev, st.st_ino) and stat.S_ISREG(st.st_mode):
            return fd, st, path
        os.close(fd)
    raise FileNotFoundError(f"no candidate is device {dev} inode {ino}: {list(candidates)}")


class HashCache:
    """``on_hashed(dev, ino, path)`` runs after a file is hashed anew (e.g. to watch it)."""

    def __init__(self, prefetch_queue: int = 256,
                 on_hashed: Callable[[int, int, str], None] | None = None) -> None:
        self._cache: dict[tuple[int, int], HashedFile] = {}
        self._dirty: set[tuple[int, int]] = set()
        self._lock = threading.Lock()
        self._queue: queue.Queue[tuple[int, int, tuple[str, ...]] | None] = \
            queue.Queue(maxsize=prefetch_queue)
        self._worker: threading.Thread | None = None
        self._on_hashed = on_hashed or (lambda _dev, _ino, _path: None)
        self.prefetch_dropped = 0
        self.hashed_files = 0

    def start(self) -> None:
        self._worker = threading.Thread(target=self._run, name="hasher", daemon=True)
        self._worker.start()

    def stop(self) -> None:
        if self._worker:
            self._queue.put(None)
            self._worker.join(timeout=5)
            self._worker = None

    def load(self, records: Iterable[HashRecord]) -> int:
        """Entries persisted by an earlier run; each is checked against its file on first use."""
        count = 0
        with self._lock:
            for r in records:
                self._cache[(r.dev, r.ino)] = HashedFile(
                    r.sha256, Fingerprint(r.size, r.mtime_ns, r.ctime_ns), r.path)
                count += 1
        return count

    def take_dirty(self) -> list[HashRecord]:
        """Entries hashed since the last call, to persist."""
        records = []
        with self._lock:
            for dev, ino in self._dirty:
                entry = self._cache.get((dev, ino))
                if entry is not None and entry.fingerprint is not None:
                    f = entry.fingerprint
                    records.append(HashRecord(dev, ino, f.size, f.mtime_ns, f.ctime_ns,
                                              entry.sha256, entry.path))
            self._dirty.clear()
        return records

    def invalidate(self, dev: int, ino: int) -> None:
        """The file changed: hash it again before its hash is used (the old one is kept as
        the last known, for a file that can no longer be opened)."""
        with self._lock:
            entry = self._cache.get((dev, ino))
            if entry is not None:
                self._cache[(dev, ino)] = HashedFile(entry.sha256, None, entry.path)

    def prefetch(self, dev: int, ino: int, candidates: Sequence[str]) -> None:
        """Ask for a hash soon; when the queue is full the request is dropped and counted."""
        try:
            self._queue.put_nowait((dev, ino, tuple(candidates)))
        except queue.Full:
            self.prefetch_dropped += 1

    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            self.sha256(*item)

    def cached(self, dev: int, ino: int) -> str:
        with self._lock:
            entry = self._cache.get((dev, ino))
        return entry.sha256 if entry else ""

    def sha256(self, dev: int, ino: int, candidates: Sequence[str]) -> str:
        """The file's sha256, or the last known one if no candidate can be opened ('' if none)."""
        try:
            fd, st, opened = _open_matching(dev, ino, candidates)
        except FileNotFoundError:
            return self.cached(dev, ino)
        try:
            fingerprint = Fingerprint.of(st)
            with self._lock:
                entry = self._cache.get((dev, ino))
            if entry and entry.fingerprint == fingerprint:
                return entry.sha256
            digest = hash_open_file(fd)
            path = next((c for c in candidates if not c.startswith("/proc/")), opened)
            with self._lock:
                self._cache[(dev, ino)] = HashedFile(digest, fingerprint, path)
                self._dirty.add((dev, ino))
                self.hashed_files += 1
        except OSError as exc:
            log.warning("cannot hash device %d inode %d: %s", dev, ino, exc)
            return self.cached(dev, ino)
        finally:
            os.close(fd)
        self._on_hashed(dev, ino, opened)
        return digest
