"""The notifier's own store: a small SQLite file the desktop user owns.

The notifier cannot write the sensor's database (it is read-only to everyone but the sensor),
so what it must remember lives here, by default ``$XDG_STATE_HOME/netwarden/notifier.db``:

- ``cursors``: the last event id handled, per database, advanced in the same transaction that
  queues the notices for that event: nothing missed across restarts, nothing shown twice;
- ``deliveries``: an outbox and a record, one row per notice and channel, with its outcome
  (pending, delivered, failed after retries, dropped when a dead channel's backlog overflowed);
- ``vt_verdicts`` / ``vt_lookups``: VirusTotal verdicts and the times of lookups (the rate
  limit survives restarts);
- ``meta`` and ``counters``: flood-control state, heartbeat and what was held back.

Each thread opens its own :class:`NotifierState`; WAL lets them work side by side.
"""

from __future__ import annotations

import enum
import os
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from netwarden.store.sqlite_db import StoreUnavailable, ensure_wal, transaction

_SCHEMA_VERSION = 1
_SCHEMA = (
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE counters (name TEXT PRIMARY KEY, total INTEGER NOT NULL)",
    """CREATE TABLE cursors (
        db TEXT PRIMARY KEY,
        last_event_id INTEGER NOT NULL,
        updated REAL NOT NULL)""",
    """CREATE TABLE deliveries (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        created REAL NOT NULL,
        channel TEXT NOT NULL,
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        notice TEXT NOT NULL,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_try REAL NOT NULL,
        updated REAL NOT NULL,
        detail TEXT NOT NULL DEFAULT '')""",
    "CREATE INDEX deliveries_due ON deliveries (channel, status, next_try)",
    """CREATE TABLE vt_verdicts (
        sha256 TEXT PRIMARY KEY,
        path TEXT NOT NULL,
        name TEXT NOT NULL,
        status TEXT NOT NULL,
        malicious INTEGER NOT NULL DEFAULT 0,
        suspicious INTEGER NOT NULL DEFAULT 0,
        undetected INTEGER NOT NULL DEFAULT 0,
        harmless INTEGER NOT NULL DEFAULT 0,
        total INTEGER NOT NULL DEFAULT 0,
        requested REAL NOT NULL,
        updated REAL NOT NULL,
        next_try REAL NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        seq INTEGER)""",
    "CREATE INDEX vt_verdicts_pending ON vt_verdicts (status, next_try)",
    "CREATE TABLE vt_lookups (time REAL NOT NULL)",
)


class DeliveryStatus(enum.Enum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"        # gave up: attempts exhausted or a permanent error
    DROPPED = "dropped"      # the channel's backlog overflowed outbox_limit


class VerdictStatus(enum.Enum):
    PENDING = "pending"
    CLEAN = "clean"          # known to VirusTotal, below the malicious threshold
    MALICIOUS = "malicious"
    UNKNOWN = "unknown"      # VirusTotal has never seen the file (404 NotFoundError)
    ERROR = "error"          # VirusTotal refused the lookup for good (the detail says why)


@dataclass(frozen=True)
class Delivery:
    id: int
    created: float
    channel: str
    kind: str
    title: str
    notice: str              # the notice as JSON
    status: DeliveryStatus
    attempts: int
    next_try: float
    updated: float
    detail: str


@dataclass(frozen=True)
class Verdict:
    sha256: str
    path: str
    name: str
    status: VerdictStatus
    malicious: int
    suspicious: int
    undetected: int
    harmless: int
    total: int
    requested: float
    updated: float
    next_try: float
    detail: str
    seq: int | None


@dataclass(frozen=True)
class QueuedNotice:
    """A notice for the outbox: what the delivery rows need of it."""

    kind: str
    title: str
    notice_json: str


@dataclass(frozen=True)
class LookupRequest:
    sha256: str
    path: str
    name: str


class NotifierState:
    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Private to the user from the first byte (it says which programs ran and what
            # was sent where); SQLite gives the -wal and -shm files the database's mode.
            os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
            self._conn = sqlite3.connect(str(path), isolation_level=None,
                                         check_same_thread=False, timeout=30)
            ensure_wal(self._conn)
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the notifier's state {path}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()

    def _migrate(self) -> None:
        if self._conn.execute("PRAGMA user_version").fetchone()[0] == _SCHEMA_VERSION:
            return
        # Threads open the file at the same moment: read the version under the write lock.
        with transaction(self._conn):
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version > _SCHEMA_VERSION:
                raise StoreUnavailable(f"{self.path} was written by a newer netwarden")
            if version < _SCHEMA_VERSION:
                for statement in _SCHEMA:
                    self._conn.execute(statement)
                self._conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    # ---- meta, counters, cursor ----

    def meta(self, key: str) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, values: Mapping[str, str]) -> None:
        with transaction(self._conn):
            self._set_meta(values)

    def _set_meta(self, values: Mapping[str, str]) -> None:
        self._conn.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                               list(values.items()))

    def all_meta(self) -> dict[str, str]:
        return dict(self._conn.execute("SELECT key, value FROM meta ORDER BY key"))

    def _count(self, counters: Mapping[str, int]) -> None:
        self._conn.executemany(
            "INSERT INTO counters (name, total) VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET total = total + excluded.total",
            [(k, v) for k, v in counters.items() if v])

    def counters(self) -> dict[str, int]:
        return dict(self._conn.execute("SELECT name, total FROM counters ORDER BY name"))

    def cursor(self, db: str) -> int | None:
        row = self._conn.execute("SELECT last_event_id FROM cursors WHERE db = ?",
                                 (db,)).fetchone()
        return None if row is None else int(row[0])

    def commit_batch(self, db: str, cursor: int, notices: Sequence[QueuedNotice],
                     channels: Sequence[str], now: float, meta: Mapping[str, str],
                     counters: Mapping[str, int],
                     lookups: Iterable[LookupRequest] = ()) -> None:
        """Everything one poll decided, atomically: outbox rows, cursor, state, lookups."""
        with transaction(self._conn):
            self._enqueue(notices, channels, now)
            self._conn.execute(
                "INSERT INTO cursors (db, last_event_id, updated) VALUES (?, ?, ?) "
                "ON CONFLICT (db) DO UPDATE SET last_event_id = excluded.last_event_id, "
                "updated = excluded.updated", (db, cursor, now))
            self._set_meta(meta)
            self._count(counters)
            self._conn.executemany(
                "INSERT OR IGNORE INTO vt_verdicts (sha256, path, name, status, requested, "
                "updated, next_try) VALUES (?, ?, ?, 'pending', ?, ?, ?)",
                [(r.sha256, r.path, r.name, now, now, now) for r in lookups])

    def queue(self, notices: Sequence[QueuedNotice], channels: Sequence[str], now: float,
              meta: Mapping[str, str]) -> None:
        """Outbox rows that follow no event (the scheduled report), with the state that says
        they were made, atomically."""
        with transaction(self._conn):
            self._enqueue(notices, channels, now)
            self._set_meta(meta)

    def _enqueue(self, notices: Sequence[QueuedNotice], channels: Sequence[str],
                 now: float) -> None:
        self._conn.executemany(
            "INSERT INTO deliveries (created, channel, kind, title, notice, status, "
            "next_try, updated) VALUES (?, ?, ?, ?, ?, 'pending', ?, ?)",
            [(now, channel, n.kind, n.title, n.notice_json, now, now)
             for n in notices for channel in channels])

    # ---- deliveries ----

    def due(self, channel: str, now: float, limit: int = 20) -> list[Delivery]:
        return [_delivery(r) for r in self._conn.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE channel = ? AND status = "
            "'pending' AND next_try <= ? ORDER BY id LIMIT ?", (channel, now, limit))]

    def settle(self, delivery_id: int, status: DeliveryStatus, attempts: int, now: float,
               detail: str, next_try: float | None = None) -> None:
        """Record the outcome of an attempt (PENDING with ``next_try`` to retry later)."""
        with transaction(self._conn):
            self._conn.execute(
                "UPDATE deliveries SET status = ?, attempts = ?, updated = ?, detail = ?, "
                "next_try = IFNULL(?, next_try) WHERE id = ?",
                (status.value, attempts, now, detail, next_try, delivery_id))

    def trim(self, channel: str, keep: int, now: float) -> int:
        """Drop the oldest pending deliveries of a channel beyond ``keep``; returns how many."""
        with transaction(self._conn):
            cursor = self._conn.execute(
                "UPDATE deliveries SET status = 'dropped', updated = ?, "
                "detail = 'dropped: more than outbox_limit messages waited for this channel' "
                "WHERE id IN (SELECT id FROM deliveries WHERE channel = ? AND status = 'pending' "
                "ORDER BY id DESC LIMIT -1 OFFSET ?)", (now, channel, keep))
            dropped = cursor.rowcount
            if dropped:
                self._count({f"dropped_{channel}": dropped})
        return dropped

    def recent(self, limit: int = 20, channel: str | None = None) -> list[Delivery]:
        where, args = ("WHERE channel = ?", [channel]) if channel else ("", [])
        rows = self._conn.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries {where} ORDER BY id DESC LIMIT ?",
            (*args, limit)).fetchall()
        return [_delivery(r) for r in reversed(rows)]

    def delivery_counts(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        for channel, status, n in self._conn.execute(
                "SELECT channel, status, COUNT(*) FROM deliveries GROUP BY channel, status "
                "ORDER BY channel, status"):
            counts.setdefault(channel, {})[status] = n
        return counts

    def last_failure(self, channel: str) -> Delivery | None:
        row = self._conn.execute(
            f"SELECT {_DELIVERY_COLUMNS} FROM deliveries WHERE channel = ? AND "
            "(status IN ('failed', 'dropped') OR (status = 'pending' AND attempts > 0)) "
            "ORDER BY updated DESC LIMIT 1", (channel,)).fetchone()
        return None if row is None else _delivery(row)

    # ---- VirusTotal ----

    def next_lookup(self, now: float) -> LookupRequest | None:
        row = self._conn.execute(
            "SELECT sha256, path, name FROM vt_verdicts WHERE status = 'pending' "
            "AND next_try <= ? ORDER BY requested LIMIT 1", (now,)).fetchone()
        return None if row is None else LookupRequest(*row)

    def note_lookup(self, now: float) -> None:
        """Count a request against the rate limit (before it is sent: failures count too)."""
        with transaction(self._conn):
            self._conn.execute("INSERT INTO vt_lookups (time) VALUES (?)", (now,))
            self._conn.execute("DELETE FROM vt_lookups WHERE time < ?", (now - 2 * 86400,))

    def lookup_times(self, since: float) -> list[float]:
        return [t for (t,) in self._conn.execute(
            "SELECT time FROM vt_lookups WHERE time >= ? ORDER BY time", (since,))]

    def record_verdict(self, sha256: str, status: VerdictStatus, now: float,
                       stats: Mapping[str, int] | None = None, detail: str = "") -> None:
        stats = stats or {}
        with transaction(self._conn):
            (seq,) = self._conn.execute("SELECT IFNULL(MAX(seq), 0) + 1 FROM vt_verdicts"
                                        ).fetchone()
            self._conn.execute(
                "UPDATE vt_verdicts SET status = ?, malicious = ?, suspicious = ?, "
                "undetected = ?, harmless = ?, total = ?, updated = ?, detail = ?, seq = ? "
                "WHERE sha256 = ?",
                (status.value, stats.get("malicious", 0), stats.get("suspicious", 0),
                 stats.get("undetected", 0), stats.get("harmless", 0),
                 sum(stats.values()), now, detail, seq, sha256))

    def defer_lookup(self, sha256: str, next_try: float, detail: str, now: float) -> None:
        with transaction(self._conn):
            self._conn.execute("UPDATE vt_verdicts SET next_try = ?, detail = ?, updated = ? "
                               "WHERE sha256 = ?", (next_try, detail, now, sha256))

    def verdicts_after(self, seq: int) -> list[Verdict]:
        return [Verdict(r[0], r[1], r[2], VerdictStatus(r[3]), *r[4:]) for r in
                self._conn.execute(f"SELECT {_VERDICT_COLUMNS} FROM vt_verdicts "
                                   "WHERE seq > ? ORDER BY seq", (seq,))]

    def verdicts(self, limit: int = 50) -> list[Verdict]:
        rows = self._conn.execute(f"SELECT {_VERDICT_COLUMNS} FROM vt_verdicts "
                                  "ORDER BY updated DESC LIMIT ?", (limit,)).fetchall()
        return [Verdict(r[0], r[1], r[2], VerdictStatus(r[3]), *r[4:]) for r in reversed(rows)]

    def verdict_counts(self) -> dict[str, int]:
        return dict(self._conn.execute("SELECT status, COUNT(*) FROM vt_verdicts "
                                       "GROUP BY status ORDER BY status"))


_DELIVERY_COLUMNS = ("id, created, channel, kind, title, notice, status, attempts, next_try, "
                     "updated, detail")
_VERDICT_COLUMNS = ("sha256, path, name, status, malicious, suspicious, undetected, harmless, "
                    "total, requested, updated, next_try, detail, seq")


def _delivery(row: tuple) -> Delivery:  # type: ignore[type-arg]
    values = list(row)
    values[6] = DeliveryStatus(values[6])
    return Delivery(*values)
