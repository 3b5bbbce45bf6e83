"""sha256 of executables, by (device, inode) and version of the content (its fingerprint).

Each file keeps the hashes of its last few versions: a process is tied to the version it
ran (the fingerprint the sensor took when it first saw the process, ``ExeRef.version``), so
the rows of a run before a change keep the old hash and the rows after it get the new one,
even when both fall in one write window. A hash is reused only for the same fingerprint
(size, mtime, ctime; and, being keyed by inode, the same inode); otherwise the file is
hashed again. fanotify invalidates entries as files change (:meth:`HashCache.invalidate`);
the fingerprint check also catches what changed while nobody watched (the sensor was down:
the cache is persisted and reloaded).

Hashing runs in a worker thread fed by a bounded queue (prefetch when a process is first
seen, while /proc/PID/exe still exists); :meth:`HashCache.sha256` computes in the caller's
thread when the prefetch has not happened. When the file changed between a run and its
hash, the content that ran is gone: :meth:`HashCache.sha256` then answers
:data:`CHANGED_BEFORE_HASHED` rather than another version's hash.
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
from netwarden.sensor.fileid import Fingerprint, same_file

log = logging.getLogger(__name__)

#: Versions of one file whose hashes are kept (a process that ran an older one and still
#: has traffic to write finds its hash here).
VERSIONS_KEPT = 8
#: The answer for a version that changed before it could be hashed: not any file's sha256.
CHANGED_BEFORE_HASHED = ""


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
        # Older versions' hashes, oldest first (the newest is also in _cache).
        self._versions: dict[tuple[int, int], dict[Fingerprint, str]] = {}
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
                fingerprint = Fingerprint(r.size, r.mtime_ns, r.ctime_ns)
                self._cache[(r.dev, r.ino)] = HashedFile(r.sha256, fingerprint, r.path)
                self._remember(r.dev, r.ino, fingerprint, r.sha256)
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

    def _remember(self, dev: int, ino: int, fingerprint: Fingerprint, sha256: str) -> None:
        versions = self._versions.setdefault((dev, ino), {})
        versions.pop(fingerprint, None)
        versions[fingerprint] = sha256
        while len(versions) > VERSIONS_KEPT:
            del versions[next(iter(versions))]

    def sha256(self, dev: int, ino: int, candidates: Sequence[str],
               version: Fingerprint | None = None) -> str:
        """The sha256 of the file's content as it was at ``version`` (as it is now, when
        None). :data:`CHANGED_BEFORE_HASHED` when that version was never hashed and the file
        has changed since; the last known hash when no candidate can be opened ('' if
        none)."""
        if version is not None:
            with self._lock:
                known = self._versions.get((dev, ino), {}).get(version)
            if known is not None:
                return known
        try:
            fd, st, opened = _open_matching(dev, ino, candidates)
        except FileNotFoundError:
            return self.cached(dev, ino)
        try:
            fingerprint = Fingerprint.of(st)
            if version is not None and fingerprint != version:
                log.info("device %d inode %d changed after it ran and before it was hashed",
                         dev, ino)
                return CHANGED_BEFORE_HASHED
            with self._lock:
                entry = self._cache.get((dev, ino))
            if entry and entry.fingerprint == fingerprint:
                return entry.sha256
            digest = hash_open_file(fd)
            if Fingerprint.of(os.fstat(fd)) != fingerprint:
                # Written to while being read: the digest is of no one version.
                return CHANGED_BEFORE_HASHED if version is not None else self.cached(dev, ino)
            path = next((c for c in candidates if not c.startswith("/proc/")), opened)
            with self._lock:
                self._cache[(dev, ino)] = HashedFile(digest, fingerprint, path)
                self._remember(dev, ino, fingerprint, digest)
                self._dirty.add((dev, ino))
                self.hashed_files += 1
        except OSError as exc:
            log.warning("cannot hash device %d inode %d: %s", dev, ino, exc)
            return self.cached(dev, ino)
        finally:
            os.close(fd)
        self._on_hashed(dev, ino, opened)
        return digest
