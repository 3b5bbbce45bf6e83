"""The baseline's SQL: its mode, its items, and what a writer does with what it saw.

Both writers (the sensor's, discovery's) call :class:`BaselineRecorder` inside the
transaction that writes what they saw, so a thing and its baseline item or drift event are
committed together. The CLI (`netwarden baseline`) changes the mode and the items through
:class:`BaselineStore`, a writer's connection like `netwarden known set` uses. Readers (the
CLI's status and list, the viewers, the notifier) use the read-only functions.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from netwarden.model import Event, EventKind
from netwarden.model.baseline import (
    BaselineItem,
    BaselineMode,
    BaselineSummary,
    DriftKind,
    Fact,
    ItemStatus,
    Mode,
    mode_at,
)
from netwarden.store.read_source import Reader, as_source
from netwarden.store.sqlite_db import close_writer, transaction
from netwarden.store.writes import open_host_store


class NoBaselineTables(RuntimeError):
    """The store predates the baseline (schema 6); a writer upgrades it on its next start."""


def _has_tables(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'baseline_mode'").fetchone() is not None


def read_mode(conn: sqlite3.Connection, now: float, host: str | None = None) -> BaselineMode:
    """The mode of ``host``'s baseline (None: the store's only or first host) at ``now``.

    A store without the tables is in mode OFF (readers must not fail on an older store).
    """
    if not _has_tables(conn):
        return BaselineMode(Mode.OFF)
    sql = ("SELECT m.learning_until, m.started FROM baseline_mode m JOIN hosts h "
           "ON h.id = m.host_id WHERE (? IS NULL OR h.name = ?) ORDER BY m.host_id LIMIT 1")
    row = conn.execute(sql, (host, host)).fetchone()
    return mode_at(None, None, now) if row is None else mode_at(row[0], row[1], now)


def _mode_of(conn: sqlite3.Connection, host_id: int, now: float) -> tuple[BaselineMode, int]:
    row = conn.execute("SELECT learning_until, started, revision FROM baseline_mode "
                       "WHERE host_id = ?", (host_id,)).fetchone()
    if row is None:
        return BaselineMode(Mode.OFF), 0
    return mode_at(row[0], row[1], now), int(row[2])


def _item(row: tuple) -> BaselineItem:
    item_id, kind, key, status, data, first_seen, updated = row
    fields = json.loads(data)
    return BaselineItem(int(item_id), DriftKind(kind), key, ItemStatus(status),
                        float(first_seen), float(updated), tuple(sorted(fields.items())))


_ITEM_COLUMNS = "b.id, b.kind, b.key, b.status, b.data, b.first_seen, b.updated"


def list_items(conn: sqlite3.Connection, kind: DriftKind | None = None,
               status: ItemStatus | None = None, host: str | None = None
               ) -> list[BaselineItem]:
    """Items by id; ``kind``/``status``/``host`` narrow the list."""
    if not _has_tables(conn):
        return []
    sql = (f"SELECT {_ITEM_COLUMNS} FROM baseline b JOIN hosts h ON h.id = b.host_id "
           "WHERE (? IS NULL OR b.kind = ?) AND (? IS NULL OR b.status = ?) "
           "AND (? IS NULL OR h.name = ?) ORDER BY b.id")
    k = None if kind is None else kind.value
    s = None if status is None else status.value
    return [_item(row) for row in conn.execute(sql, (k, k, s, s, host, host))]


def count_items(conn: sqlite3.Connection, host: str | None = None
                ) -> dict[tuple[str, str], int]:
    """(kind, status) -> number of items."""
    if not _has_tables(conn):
        return {}
    return {(kind, status): int(n) for kind, status, n in conn.execute(
        "SELECT b.kind, b.status, COUNT(*) FROM baseline b JOIN hosts h ON h.id = b.host_id "
        "WHERE (? IS NULL OR h.name = ?) GROUP BY b.kind, b.status", (host, host))}


def baseline_summary(conn: Reader, now: float) -> BaselineSummary | None:
    """The viewers' badge: the mode and the drift awaiting review; None for a fleet server
    (the baseline is one host's and is not shipped)."""
    source = as_source(conn)
    if source.remote:
        return None
    return BaselineSummary(read_mode(source.conn, now), pending_drift(source.conn))


def pending_drift(conn: sqlite3.Connection) -> int:
    """Drift items awaiting review, as notified: a drifting program's destinations count with
    the program (they raised no event and are approved with it)."""
    if not _has_tables(conn):
        return 0
    return int(conn.execute(
        "SELECT COUNT(*) FROM baseline b WHERE b.status = 'drift' AND NOT ("
        "b.kind = 'new_destination' AND EXISTS (SELECT 1 FROM baseline p WHERE "
        "p.host_id = b.host_id AND p.kind = 'new_program' AND p.status = 'drift' AND "
        "substr(b.key, 1, length(p.key) + 1) = p.key || ' '))").fetchone()[0])


class BaselineRecorder:
    """A writer's side of the baseline: facts in, baseline items and drift events out.

    Remembers the status of each (kind, key) it met, so a window of flows costs a lookup only
    for what it has not met before; the cache is dropped when the mode row's revision moves
    (the CLI approved or revoked something, or learning was restarted).

    A program outside the baseline is one drift, not one per place it talks to: its
    destinations become drift items without events, and approving the program approves them.
    """

    def __init__(self, host_id: int) -> None:
        self._host_id = host_id
        self._known: dict[tuple[DriftKind, str], ItemStatus] = {}
        self._revision = -1

    def mode(self, conn: sqlite3.Connection, now: float) -> BaselineMode:
        mode, revision = _mode_of(conn, self._host_id, now)
        if revision != self._revision:
            self._known.clear()
            self._revision = revision
        return mode

    def forget(self) -> None:
        """After a rolled-back transaction: what it inserted is gone."""
        self._known.clear()
        self._revision = -1

    def observe(self, conn: sqlite3.Connection, facts: Iterable[Fact], now: float,
                mode: BaselineMode) -> list[Event]:
        """Record ``facts`` (inside the caller's transaction): learned while learning, drift
        items with one drift event each when enforcing; nothing when off."""
        if mode.mode is Mode.OFF:
            return []
        learning = mode.mode is Mode.LEARNING
        events = []
        # Programs first: whether a destination is news depends on its program's status.
        for fact in sorted(facts, key=lambda f: f.kind is not DriftKind.NEW_PROGRAM):
            if self._status(conn, fact.kind, fact.key) is not None:
                continue
            status = ItemStatus.LEARNED if learning else ItemStatus.DRIFT
            item_id = self._insert(conn, fact, status, now)
            if learning or self._program_drifts(conn, fact):
                continue
            events.append(Event.of(now, EventKind.DRIFT, **dict(fact.fields),
                                   drift=fact.kind.value, key=fact.key, item=item_id))
        return events

    def _program_drifts(self, conn: sqlite3.Connection, fact: Fact) -> bool:
        """A destination of a program that is itself drift (told by the program's event)."""
        if fact.kind is not DriftKind.NEW_DESTINATION:
            return False
        path = str(dict(fact.fields).get("path", ""))
        return self._status(conn, DriftKind.NEW_PROGRAM, path) is ItemStatus.DRIFT

    def _insert(self, conn: sqlite3.Connection, fact: Fact, status: ItemStatus,
                now: float) -> int:
        cursor = conn.execute(
            "INSERT INTO baseline (host_id, kind, key, status, data, first_seen, updated) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (self._host_id, fact.kind.value, fact.key, status.value,
             json.dumps(dict(fact.fields), sort_keys=True), now, now))
        self._known[(fact.kind, fact.key)] = status
        return int(cursor.lastrowid or 0)

    def _status(self, conn: sqlite3.Connection, kind: DriftKind, key: str
                ) -> ItemStatus | None:
        cached = self._known.get((kind, key))
        if cached is not None:
            return cached
        row = conn.execute("SELECT status FROM baseline WHERE host_id = ? AND kind = ? AND "
                           "key = ?", (self._host_id, kind.value, key)).fetchone()
        if row is None:
            return None
        self._known[(kind, key)] = status = ItemStatus(row[0])
        return status


class ItemNotFound(LookupError):
    """No baseline item has that id or key."""


class AmbiguousKey(LookupError):
    """A key names items of several kinds; the message lists them."""


class NotLearning(RuntimeError):
    """`finish` while the baseline is not learning."""


class BaselineStore:
    """The CLI's writer for the baseline (opened like `netwarden known set` opens the store)."""

    def __init__(self, path: Path, now: float, group: str | None = "netwarden",
                 owner: str | None = None, host: str | None = None) -> None:
        store = open_host_store(path, now, group, owner, host)
        self._conn, self.host, self._host_id = store.conn, store.host, store.host_id

    def close(self) -> None:
        close_writer(self._conn)

    def learn(self, now: float, days: float) -> BaselineMode:
        """Start learning for ``days`` from now, or move the end of the current period."""
        with transaction(self._conn):
            mode, _ = _mode_of(self._conn, self._host_id, now)
            started = mode.started if mode.mode is Mode.LEARNING else now
            self._conn.execute(
                "INSERT INTO baseline_mode (host_id, started, learning_until, revision, "
                "updated) VALUES (?, ?, ?, 1, ?) ON CONFLICT (host_id) DO UPDATE SET "
                "started = excluded.started, learning_until = excluded.learning_until, "
                "revision = revision + 1, updated = excluded.updated",
                (self._host_id, started, now + days * 86400.0, now))
            return _mode_of(self._conn, self._host_id, now)[0]

    def finish(self, now: float) -> BaselineMode:
        with transaction(self._conn):
            mode, _ = _mode_of(self._conn, self._host_id, now)
            if mode.mode is not Mode.LEARNING:
                raise NotLearning(f"the baseline is not learning (mode {mode.mode.value})")
            self._conn.execute("UPDATE baseline_mode SET learning_until = ?, updated = ?, "
                               "revision = revision + 1 WHERE host_id = ?",
                               (now, now, self._host_id))
            return _mode_of(self._conn, self._host_id, now)[0]

    def find(self, ident: str, kind: DriftKind | None = None) -> BaselineItem:
        """The item with id ``ident`` (digits) or key ``ident`` (of ``kind`` when given)."""
        rows = []
        if ident.isdigit():
            rows = self._conn.execute(f"SELECT {_ITEM_COLUMNS} FROM baseline b WHERE "
                                      "b.host_id = ? AND b.id = ?",
                                      (self._host_id, int(ident))).fetchall()
        if not rows:
            rows = self._conn.execute(
                f"SELECT {_ITEM_COLUMNS} FROM baseline b WHERE b.host_id = ? AND b.key = ? "
                "AND (? IS NULL OR b.kind = ?) ORDER BY b.id",
                (self._host_id, ident, kind and kind.value, kind and kind.value)).fetchall()
        if not rows:
            raise ItemNotFound(f"no baseline item has the id or key {ident!r}")
        if len(rows) > 1:
            kinds = ", ".join(f"{row[1]} (id {row[0]})" for row in rows)
            raise AmbiguousKey(f"the key {ident!r} names several items: {kinds}; "
                               "give the id or --kind")
        return _item(rows[0])

    def approve(self, ident: str, now: float, kind: DriftKind | None = None) -> BaselineItem:
        """Put a drift item into the baseline (a program: with the destinations it had while
        it drifted); an item already in it stays as it is."""
        with transaction(self._conn):
            item = self.find(ident, kind)
            if item.status is ItemStatus.DRIFT:
                self._conn.execute("UPDATE baseline SET status = ?, updated = ? WHERE id = ?",
                                   (ItemStatus.APPROVED.value, now, item.id))
                if item.kind is DriftKind.NEW_PROGRAM:
                    # The destinations it had while it drifted come along (they raised no
                    # event of their own: the program's covered them).
                    self._conn.execute(
                        "UPDATE baseline SET status = ?, updated = ? WHERE host_id = ? AND "
                        "kind = ? AND status = ? AND substr(key, 1, length(?) + 1) = ? || ' '",
                        (ItemStatus.APPROVED.value, now, self._host_id,
                         DriftKind.NEW_DESTINATION.value, ItemStatus.DRIFT.value, item.key,
                         item.key))
                self._bump(now)
            return self.find(str(item.id))

    def revoke(self, ident: str, now: float, kind: DriftKind | None = None) -> BaselineItem:
        """Take an item out (the row goes): seen again after learning, it drifts again."""
        with transaction(self._conn):
            item = self.find(ident, kind)
            self._conn.execute("DELETE FROM baseline WHERE id = ?", (item.id,))
            self._bump(now)
            return item

    def _bump(self, now: float) -> None:
        self._conn.execute("UPDATE baseline_mode SET revision = revision + 1, updated = ? "
                           "WHERE host_id = ?", (now, self._host_id))
