"""The remote sink's loop: ship what the store has committed and the server has not.

One round: open the store read-only, read each shipped table's rows past its cursor in one
read snapshot (what a row refers to goes first), insert them all on the server in one
transaction with idempotent inserts, COMMIT, and only then move the cursors. While the server
is down the store is the spool: nothing is dropped, the sink waits (1 s, doubling up to
``retry_max_s``) and says why in its status.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from netwarden.store.remote_db import (
    RemoteConnection,
    RemoteError,
    RemoteSchemaError,
    RemoteTarget,
)
from netwarden.store.remote_schema import HEARTBEATS, shipped_columns
from netwarden.store.shipping import (
    SHIPPED_TABLES, ShippedTable, rows_after, source_id, total_backlog,
)
from netwarden.store.sink_state import SinkState, SinkStateFile, SinkStatus
from netwarden.store.sqlite_db import StoreUnavailable, open_readonly

log = logging.getLogger("netwarden.sink")

Connector = Callable[[RemoteTarget], RemoteConnection]


@dataclass(frozen=True)
class Batch:
    """One round's rows: table -> rows (each starting with source_id), and the sequence
    each table's cursor moves to once the server has committed them."""

    rows: dict[str, list[tuple[object, ...]]]
    last: dict[str, int]

    @property
    def size(self) -> int:
        return sum(len(r) for r in self.rows.values())


@dataclass(frozen=True)
class Backlog:
    rows: int
    oldest: float | None       # epoch s of the oldest unshipped row with a time


class Shipper:
    def __init__(self, db_path: Path, state: SinkStateFile, target: RemoteTarget,
                 connector: Connector, batch_rows: int = 5000,
                 clock: Callable[[], float] = time.time, heartbeat_s: float = 60.0) -> None:
        self.db_path = db_path
        self.state = state
        self.target = target
        self._connector = connector
        self.batch_rows = batch_rows
        self._clock = clock
        self._columns = {name: [c.name for c in cols]
                         for name, cols in shipped_columns().items()}
        self._remote: RemoteConnection | None = None
        self.status = SinkStatus(target=target.url.redacted())
        self.heartbeat_s = heartbeat_s
        self._last_heartbeat = 0.0

    # ---- one round ----

    def read_batch(self, conn: sqlite3.Connection, source: str) -> Batch:
        cursors = self.state.cursors(source)
        rows: dict[str, list[tuple[object, ...]]] = {}
        last: dict[str, int] = {}
        conn.execute("BEGIN")          # one snapshot: references and referrers agree
        try:
            for table in SHIPPED_TABLES:
                columns = self._columns[table.name]
                found = rows_after(conn, table, columns, cursors.get(table.name, 0),
                                   self.batch_rows)
                if found:
                    position = columns.index(table.sequence)
                    rows[table.name] = [(source, *row) for row in found]
                    last[table.name] = int(found[-1][position])
        finally:
            conn.execute("COMMIT")
        return Batch(rows, last)

    def send(self, batch: Batch) -> None:
        """Insert the batch in one server transaction; raise unless it was committed."""
        self._commit("shipping", [(table, batch.rows[table.name]) for table in SHIPPED_TABLES
                                  if batch.rows.get(table.name)])

    def _commit(self, doing: str, inserts: list[tuple[ShippedTable, list[tuple[object, ...]]]]
                ) -> None:
        """Insert each table's rows and COMMIT, or raise RemoteError (the connection then
        dropped, the server's transaction rolled back)."""
        remote = self._connection()
        try:
            with remote.errors(doing):
                for table, rows in inserts:
                    remote.insert_rows(table.name, ["source_id", *self._columns[table.name]],
                                       rows, table.remote_key)
                remote.commit()
        except RemoteError:
            self._drop_connection()
            raise

    def ship_round(self) -> int:
        """Ship one batch; returns its row count (0: caught up)."""
        conn = open_readonly(self.db_path)
        try:
            source = source_id(conn)
            self.status = replace(self.status, source_id=source)
            batch = self.read_batch(conn, source)
        finally:
            conn.close()
        if batch.size:
            self.send(batch)
            self.state.advance(source, batch.last)   # after the server's COMMIT, never before
            self.status = replace(self.status, shipped_rows=self.status.shipped_rows + batch.size,
                                  last_shipped=self._clock())
        return batch.size

    def backlog(self) -> Backlog:
        conn = open_readonly(self.db_path)
        try:
            rows, oldest = total_backlog(conn, self.state.cursors(source_id(conn)))
        finally:
            conn.close()
        return Backlog(rows, oldest)

    def catch_up(self, stop: Callable[[], bool] = lambda: False) -> int:
        """Ship rounds until nothing is left (or ``stop``); returns the rows shipped."""
        shipped = 0
        while not stop():
            count = self.ship_round()
            shipped += count
            if count < self.batch_rows:
                break
            if shipped == count:       # a backlog: say so once (counting it costs a scan)
                self._set(SinkState.SHIPPING)
            self.heartbeat()           # a long replay still says it is alive
        if shipped:
            log.debug("shipped %d rows", shipped)
        self._set(SinkState.CAUGHT_UP, error="")
        self.heartbeat()
        return shipped

    def heartbeat(self) -> bool:
        """Tell the server this sink is alive (every ``heartbeat_s``); True if one was sent."""
        now = self._clock()
        if now - self._last_heartbeat < self.heartbeat_s:
            return False
        status = self.status
        self._commit("writing a heartbeat", [(HEARTBEATS, [(
            status.source_id, int(now * 1000), now, status.state, status.behind_rows,
            status.behind_s, status.shipped_rows, status.error)])])
        self._last_heartbeat = now
        return True

    # ---- the service ----

    def run(self, stop: Callable[[], bool], wait: Callable[[float], None], interval_s: float,
            retry_max_s: float, once: bool = False) -> int:
        """Ship until ``stop()``; with ``once`` until caught up (exit status 0) or the first
        failure (75, EX_TEMPFAIL, the rows still waiting in the store)."""
        pause = 1.0
        while not stop():
            try:
                self.catch_up(stop)
                pause = 1.0
                if once:
                    return 0
                wait(interval_s)
            except (RemoteError, StoreUnavailable, LookupError) as exc:
                state = SinkState.SCHEMA if isinstance(exc, RemoteSchemaError) else \
                    SinkState.RETRYING
                self._failed(state, str(exc), pause)
                if once:
                    return 75
                wait(pause)
                pause = min(pause * 2, retry_max_s)
        self._set(SinkState.STOPPED)
        self._drop_connection()
        return 0

    def _failed(self, state: SinkState, message: str, pause: float) -> None:
        now = self._clock()
        if message != self.status.error:
            log.warning("%s (retrying in %.0f s; rows wait in the store)", message, pause)
        since = self.status.error_since if self.status.error else now
        self.status = replace(self.status, error_since=since, next_try=now + pause)
        self._set(state, error=message)

    def _set(self, state: SinkState, error: str | None = None) -> None:
        changes: dict[str, object] = {"state": state.value}
        if error is not None:
            changes["error"] = error
            if not error:
                changes.update(error_since=0.0, next_try=0.0)
        try:
            pending = self.backlog()
            now = self._clock()
            changes.update(behind_rows=pending.rows,
                           behind_s=0.0 if pending.oldest is None
                           else max(0.0, now - pending.oldest))
        except (StoreUnavailable, LookupError, sqlite3.Error):
            pass
        self.status = replace(self.status, pid=os.getpid(), **changes)  # type: ignore[arg-type]
        self.state.write_status(self.status)

    def _connection(self) -> RemoteConnection:
        if self._remote is None:
            remote = self._connector(self.target)
            try:
                remote.schema_version()
            except RemoteError:
                remote.close()
                raise
            self._remote = remote
            log.info("connected to %s", self.target.url.redacted())
        return self._remote

    def _drop_connection(self) -> None:
        if self._remote is not None:
            self._remote.rollback()
            self._remote.close()
            self._remote = None
