"""The remote sink's own small SQLite file: its cursors and its status.

The sink reads the sensor's store read-only, so what it must remember lives here (by default
``/var/lib/netwarden/sink-state.db``, owned by user netwarden):

- ``cursors``: per store (``source_id``) and table, the highest sequence the server has
  COMMITTED. It moves only after that COMMIT, in one local transaction for the whole batch;
  a crash in between resends rows the server then skips (idempotent key), so every row
  arrives exactly once;
- ``status``: what ``netwarden sink --status``, ``netwarden doctor`` and the sensor's health
  rows show: the state, the last error (never with the password), rows and seconds behind.
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from netwarden.store.sqlite_db import (
    StoreUnavailable,
    ensure_wal,
    open_readonly,
    transaction,
)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS cursors (
        source_id TEXT NOT NULL,
        table_name TEXT NOT NULL,
        seq INTEGER NOT NULL,
        PRIMARY KEY (source_id, table_name))""",
    "CREATE TABLE IF NOT EXISTS status (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


class SinkState(enum.Enum):
    STARTING = "starting"
    SHIPPING = "shipping"          # a backlog is going out
    CAUGHT_UP = "caught up"
    RETRYING = "retrying"          # the server is unreachable or refused us; rows wait here
    SCHEMA = "schema problem"      # no schema, or a newer one: waiting for an administrator
    STOPPED = "stopped"


@dataclass(frozen=True)
class SinkStatus:
    state: str = SinkState.STARTING.value
    target: str = ""               # the server's URL without a password
    source_id: str = ""
    updated: float = 0.0           # when this status was written
    last_shipped: float = 0.0      # the last COMMIT the server confirmed
    shipped_rows: int = 0          # rows shipped since the sink started
    behind_rows: int = 0           # rows in the store the server does not have yet
    behind_s: float = 0.0          # age of the oldest of them
    error: str = ""                # why the last attempt failed ("" once one succeeds)
    error_since: float = 0.0
    next_try: float = 0.0
    pid: int = 0

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


class SinkStateFile:
    """The sink's read-write handle (one per sink process)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        old_umask = os.umask(0o027)
        try:
            self._conn = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the sink's state {path}: {exc}") from exc
        finally:
            os.umask(old_umask)
        ensure_wal(self._conn)
        with transaction(self._conn):
            for statement in _SCHEMA:
                self._conn.execute(statement)

    def close(self) -> None:
        self._conn.close()

    def cursors(self, source_id: str) -> dict[str, int]:
        return _cursors(self._conn, source_id)

    def advance(self, source_id: str, committed: Mapping[str, int]) -> None:
        """Record what the server has committed (call only after its COMMIT returned)."""
        with transaction(self._conn):
            self._conn.executemany(
                "INSERT INTO cursors (source_id, table_name, seq) VALUES (?, ?, ?) "
                "ON CONFLICT (source_id, table_name) DO UPDATE SET seq = MAX(seq, excluded.seq)",
                [(source_id, table, seq) for table, seq in committed.items()])

    def write_status(self, status: SinkStatus) -> None:
        values = asdict(status)
        values["updated"] = time.time()
        with transaction(self._conn):
            self._conn.executemany(
                "INSERT INTO status (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE "
                "SET value = excluded.value", [(k, json.dumps(v)) for k, v in values.items()])


def _cursors(conn: sqlite3.Connection, source_id: str) -> dict[str, int]:
    return {table: int(seq) for table, seq in conn.execute(
        "SELECT table_name, seq FROM cursors WHERE source_id = ?", (source_id,))}


def read_status(path: Path) -> SinkStatus | None:
    """The status a sink last wrote (None when no sink has run with this state file)."""
    if not path.exists():
        return None
    conn = open_readonly(path, timeout=5)
    try:
        rows = dict(conn.execute("SELECT key, value FROM status").fetchall())
    except sqlite3.Error as exc:
        raise StoreUnavailable(f"cannot read the sink's state {path}: {exc}") from exc
    finally:
        conn.close()
    known = SinkStatus.__dataclass_fields__
    return SinkStatus(**{k: json.loads(v) for k, v in rows.items() if k in known})


def read_cursors(path: Path, source_id: str) -> dict[str, int] | None:
    """The sink's cursors for one store, read-only (the sensor's retention guard)."""
    if not path.exists():
        return None
    conn = open_readonly(path, timeout=5)
    try:
        return _cursors(conn, source_id)
    finally:
        conn.close()
