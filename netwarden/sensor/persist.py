"""The writer thread: closed windows in, hashed rows out to the store.

Hashing happens here, not on the drain path, so a large new executable never delays reading
the kernel's counters. A window that fails to write (disk full, database locked) is kept and
retried; only past ``max_pending`` windows is the oldest dropped, and that drop is counted.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from netwarden.model import (
    Event,
    EventKind,
    ExecRow,
    Executable,
    FlowRow,
    HealthSample,
    ProgramIdentity,
)
from netwarden.sensor.aggregator import ExecSighting, ProgramRef, Window
from netwarden.sensor.csvlog import CsvLog
from netwarden.sensor.hashing import CHANGED_BEFORE_HASHED, HashCache
from netwarden.sensor.identity import ExeRef
from netwarden.sensor.ignore import IgnoreRules
from netwarden.sensor.listening import ListenWatch
from netwarden.sensor.shipping_watch import ShippingWatch
from netwarden.store.sqlite_writer import SqliteWriter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WindowBatch:
    """Everything to write for one window."""

    window: Window
    events: tuple[Event, ...] = ()
    health: tuple[HealthSample, ...] = ()
    execs: tuple[ExecSighting, ...] = ()
    #: The window's number in the kernel's `carry` map (0: not carried): committed with the
    #: rows, then the kernel may let go of it.
    carry_batch: int = 0


@dataclass
class WriterStats:
    windows_written: int = 0
    rows_written: int = 0
    write_failures: int = 0
    windows_dropped: int = 0
    rows_ignored: int = 0
    csv_failures: int = 0
    last_error: str = ""


class ProgramResolver:
    """ProgramRef (paths and inodes) -> ProgramIdentity (paths and sha256).

    Remembers each path's last sha256: when a path hashes differently than before (modified
    in place, replaced, or changed while the sensor was down) it records an exe_modified
    event, taken by :meth:`take_events`.
    """

    def __init__(self, hashes: HashCache, history: dict[str, str] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.hashes = hashes
        self._history = dict(history or {})
        self._events: list[Event] = []
        self._clock = clock

    def executable(self, ref: ExeRef, name: str = "") -> Executable:
        if ref.ino == 0 or not ref.candidates():
            sha = self.hashes.cached(ref.dev, ref.ino)
        else:
            sha = self.hashes.sha256(ref.dev, ref.ino, ref.candidates(), ref.version)
        if sha == CHANGED_BEFORE_HASHED and ref.version is not None:
            self._changed_unseen(ref.path, name)
        self._note(ref.path, sha, name)
        return Executable(ref.path, sha)

    def _changed_unseen(self, path: str, name: str) -> None:
        """The file changed after a process ran it and before it was hashed: its rows name
        no hash, and an exe_modified event says what is known (once per path until the
        next hash of it)."""
        if self._history.get(path) == CHANGED_BEFORE_HASHED or path.startswith("["):
            return
        self._events.append(Event.of(
            self._clock(), EventKind.EXE_MODIFIED, path=path,
            old_sha256=self._history.get(path, ""), new_sha256="",
            name=name or os.path.basename(path),
            detail="changed after it ran and before it could be hashed"))
        self._history[path] = CHANGED_BEFORE_HASHED

    def _note(self, path: str, sha: str, name: str) -> None:
        if not sha or path.startswith("["):
            return
        before = self._history.get(path)
        self._history[path] = sha
        if before and before != sha:
            self._events.append(Event.of(self._clock(), EventKind.EXE_MODIFIED, path=path,
                                         old_sha256=before, new_sha256=sha,
                                         name=name or os.path.basename(path)))

    def take_events(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def _optional(self, ref: ExeRef | None) -> Executable | None:
        return None if ref is None else self.executable(ref)

    def identity(self, program: ProgramRef) -> ProgramIdentity:
        return ProgramIdentity(
            exe=self.executable(program.exe, program.name), name=program.name,
            cmdline=program.cmdline, uid=program.uid, parent=self._optional(program.parent),
            grandparent=self._optional(program.grandparent),
            script=self._optional(program.script), container=program.container)


def window_rows(window: Window, resolver: ProgramResolver) -> list[FlowRow]:
    identities: dict[ProgramRef, ProgramIdentity] = {}
    rows = []
    for group, totals in window.counters.items():
        identity = identities.get(group.program)
        if identity is None:
            identity = identities[group.program] = resolver.identity(group.program)
        rows.append(FlowRow(
            time=window.start, program=identity, family=group.family, protocol=group.protocol,
            ip_protocol=group.ip_protocol, laddr=group.laddr, lport=group.lport,
            raddr=group.raddr, rport=group.rport, sent=totals.sent, recv=totals.recv,
            netns=group.netns, domain=group.domain, first_seen=totals.first_seen))
    return rows


@dataclass(frozen=True)
class Retention:
    """Delete rows older than ``days``, ``batch`` rows per table per transaction, for at most
    ``budget_s`` after each window (the rest waits for the next window)."""

    days: int
    batch: int = 5000
    budget_s: float = 0.2


class WindowWriter:
    """Owns the store connection; runs in its own thread."""

    def __init__(self, store: SqliteWriter, resolver: ProgramResolver, *, queue_size: int = 64,
                 max_pending: int = 360, clock: Callable[[], float] = time.time,
                 retry_delay_s: float = 2.0, ignore: IgnoreRules | None = None,
                 csv_log: CsvLog | None = None, retention: Retention | None = None,
                 shipping: ShippingWatch | None = None,
                 listen: ListenWatch | None = None,
                 on_committed: Callable[[int], None] | None = None) -> None:
        self._store = store
        self._listen = listen
        self._on_committed = on_committed
        self._shipping = shipping
        self._resolver = resolver
        self._ignore = ignore
        self._csv_log = csv_log
        self._retention = retention
        self._queue: queue.Queue[WindowBatch | None] = queue.Queue(maxsize=queue_size)
        self._pending: deque[tuple[WindowBatch, list[FlowRow] | None]] = deque()
        self._max_pending = max_pending
        self._clock = clock
        self._retry_delay = retry_delay_s
        self.stats = WriterStats()
        self._stats_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="writer", daemon=True)
        self._thread.start()

    def submit(self, batch: WindowBatch) -> bool:
        """Queue a window; False (and counted) if the writer is this far behind."""
        try:
            self._queue.put_nowait(batch)
            return True
        except queue.Full:
            with self._stats_lock:
                self.stats.windows_dropped += 1
            return False

    def stop(self, timeout_s: float = 30.0) -> None:
        """Write everything queued, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout=timeout_s)
        self._thread = None

    def take_stats(self) -> WriterStats:
        with self._stats_lock:
            stats, self.stats = self.stats, WriterStats(last_error=self.stats.last_error)
        return stats

    def _run(self) -> None:
        stopping = False
        while not (stopping and not self._pending):
            try:
                item = self._queue.get(timeout=self._retry_delay if self._pending else None)
            except queue.Empty:
                item = False  # type: ignore[assignment]
            if item is None:
                stopping = True
            elif item:
                self._pending.append((item, None))
                while len(self._pending) > self._max_pending:
                    self._pending.popleft()
                    with self._stats_lock:
                        self.stats.windows_dropped += 1
            if not self._write_pending() and stopping:
                log.error("store unavailable at shutdown; %d window(s) not written",
                          len(self._pending))
                return

    def _write_pending(self) -> bool:
        while self._pending:
            batch, rows = self._pending[0]
            try:
                if rows is None:
                    rows = window_rows(batch.window, self._resolver)
                    batch = dataclasses.replace(
                        batch, events=batch.events + tuple(self._resolver.take_events()))
                    self._pending[0] = (batch, rows)
                kept, ignored = self._split_ignored(rows)
                execs = [ExecRow(e.time, e.pid, self._resolver.identity(e.program))
                         for e in batch.execs]
                listening = self._listen.scan() if self._listen is not None else []
                self._store.write(kept, batch.events, batch.health, int(self._clock()),
                                  hashes=self._resolver.hashes.take_dirty(),
                                  seen=[r.program.exe for r in ignored], execs=execs,
                                  listening=listening,
                                  carry_batch=batch.carry_batch)
            except Exception as exc:  # the store failed: keep the window, try again later
                log.warning("writing window %d failed: %s", batch.window.start, exc)
                with self._stats_lock:
                    self.stats.write_failures += 1
                    self.stats.last_error = str(exc)
                return False
            self._pending.popleft()
            if batch.carry_batch and self._on_committed is not None:
                try:
                    self._on_committed(batch.carry_batch)
                except OSError as exc:  # kept in the kernel a while longer: not lost
                    log.warning("releasing window %d from carry: %s", batch.window.start, exc)
            with self._stats_lock:
                self.stats.windows_written += 1
                self.stats.rows_written += len(kept)
                self.stats.rows_ignored += len(ignored)
            self._after_write(kept)
        return True

    def _split_ignored(self, rows: list[FlowRow]) -> tuple[list[FlowRow], list[FlowRow]]:
        if not self._ignore:
            return rows, []
        kept, ignored = [], []
        for row in rows:
            (ignored if self._ignore.matches(row) else kept).append(row)
        return kept, ignored

    def _after_write(self, rows: list[FlowRow]) -> None:
        """Work that may fail or wait without risking the window: text log, retention."""
        if self._csv_log is not None:
            try:
                self._csv_log.append(rows)
            except OSError as exc:
                log.warning("CSV connection log %s: %s", self._csv_log.path, exc)
                with self._stats_lock:
                    self.stats.csv_failures += 1
        events: list[Event] = []
        health: list[HealthSample] = []
        # The sink's cursors, read once a window for both retention and the lag.
        shipped = self._shipping.cursors(self._store) if self._shipping else None
        if self._retention is not None and self._retention.days > 0:
            events, health = self._prune(shipped)
        if self._shipping is not None and shipped is not None:
            try:
                health += self._shipping.lag(self._store, shipped, self._clock())
            except Exception as exc:  # the store is busy: say it next window
                log.warning("remote sink lag: %s", exc)
        if events or health:
            try:
                self._store.write([], events, health, int(self._clock()))
            except Exception as exc:
                log.warning("writing retention and sink health: %s", exc)

    def _prune(self, shipped: dict[str, int] | None) -> tuple[list[Event], list[HealthSample]]:
        """Delete what retention says, counting rows the remote sink never shipped (past
        ``shipped``, its cursors; None: no sink)."""
        assert self._retention is not None
        cutoff = self._clock() - self._retention.days * 86400
        deadline = time.monotonic() + self._retention.budget_s
        unshipped = 0
        try:
            while time.monotonic() < deadline:
                pruned = self._store.prune_before(cutoff, self._retention.batch, shipped)
                unshipped += pruned.unshipped
                if not pruned.deleted:
                    break
        except Exception as exc:  # the store is busy or failing: prune next time
            log.warning("retention: %s", exc)
        if unshipped:
            log.warning("retention deleted %d rows the remote sink had not shipped", unshipped)
        return ShippingWatch.pruned_unshipped(unshipped, self._clock())
