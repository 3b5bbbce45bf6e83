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
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from netwarden.store.remote_db import (
    OutgoingRows,
    RemoteConnection,
    RemoteError,
    RemoteSchemaError,
    RemoteTarget,
    outgoing_rows,
)
from netwarden.store.dialects import Dialect
from netwarden.store.remote_schema import HEARTBEATS, shipped_columns
from netwarden.store.shipping import SHIPPED_TABLES, rows_after, source_id, total_backlog
from netwarden.store.sink_state import SinkState, SinkStateFile, SinkStatus
from netwarden.store.sqlite_db import StoreUnavailable, open_readonly

log = logging.getLogger("netwarden.sink")

Connector = Callable[[RemoteTarget], RemoteConnection]


@dataclass(frozen=True)
class Batch:
    """One round's rows of the store ``source``, each table's ready to send (each row
    starting with source_id), and the sequence each table's cursor moves to once the
    server has committed them."""

    source: str
    tables: tuple[OutgoingRows, ...]
    last: dict[str, int]

    @property
    def size(self) -> int:
        return sum(len(t.rows) for t in self.tables)


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
        self._read_ahead: ThreadPoolExecutor | None = None
        #: How a table's rows are made ready to send (in the read-ahead thread).
        self.prepare: Callable[[Dialect, str, Sequence[str], Sequence[Sequence[object]]],
                               OutgoingRows] = outgoing_rows

    # ---- one round ----

    def read_batch(self, after: Mapping[str, int], source: str | None = None) -> Batch:
        """The rows of each shipped table past ``after`` (table -> sequence) in one read
        snapshot, made ready to send. Touches nothing of the Shipper's but the store's
        path, so it may run in the read-ahead thread. With ``source``, a store that is no
        longer that one (replaced since) gives an empty batch."""
        conn = open_readonly(self.db_path)
        try:
            found_source = source_id(conn)
            if source is not None and found_source != source:
                return Batch(found_source, (), {})
            tables: list[OutgoingRows] = []
            last: dict[str, int] = {}
            conn.execute("BEGIN")          # one snapshot: references and referrers agree
            for table in SHIPPED_TABLES:
                columns = self._columns[table.name]
                found = rows_after(conn, table, columns, after.get(table.name, 0),
                                   self.batch_rows, lead=(found_source,))
                if found:
                    last[table.name] = int(found[-1][1 + columns.index(table.sequence)])
                    tables.append(self.prepare(self.target.dialect, table.name,
                                               ["source_id", *columns], found))
            conn.execute("COMMIT")
        finally:
            conn.close()
        return Batch(found_source, tuple(tables), last)

    def send(self, batch: Batch) -> None:
        """Insert the batch in one server transaction; raise unless it was committed."""
        self._commit("shipping", batch.tables)

    def _commit(self, doing: str, tables: Sequence[OutgoingRows]) -> None:
        """Insert each table's rows and COMMIT, or raise RemoteError (the connection then
        dropped, the server's transaction rolled back)."""
        remote = self._connection()
        try:
            with remote.errors(doing):
                for outgoing in tables:
                    remote.insert(outgoing)
                remote.commit()
        except RemoteError:
            self._drop_connection()
            raise

    def first_batch(self) -> Batch:
        conn = open_readonly(self.db_path)
        try:
            source = source_id(conn)
        finally:
            conn.close()
        return self.read_batch(self.state.cursors(source), source)

    def ship(self, batch: Batch) -> None:
        """Send ``batch``, then move the cursors: after the server's COMMIT, never before."""
        self.status = replace(self.status, source_id=batch.source)
        if batch.size:
            self.send(batch)
            self.state.advance(batch.source, batch.last)
            self.status = replace(self.status, shipped_rows=self.status.shipped_rows + batch.size,
                                  last_shipped=self._clock())

    def backlog(self) -> Backlog:
        conn = open_readonly(self.db_path)
        try:
            rows, oldest = total_backlog(conn, self.state.cursors(source_id(conn)))
        finally:
            conn.close()
        return Backlog(rows, oldest)

    def catch_up(self, stop: Callable[[], bool] = lambda: False) -> int:
        """Ship rounds until nothing is left (or ``stop``); returns the rows shipped.

        While a full batch travels, the next one is read (and, for MariaDB, written out as
        statements) in a second thread: the server's COPY or INSERT and its COMMIT leave
        this thread waiting on the socket, and reading the store needs no answer from the
        server. The next batch starts where this one ends; the cursors still move only
        after each COMMIT, and a batch read ahead of a failed one is dropped."""
        shipped = 0
        self._connection()        # down: fail before reading anything, so an outage costs
        batch = self.first_batch()    # neither memory nor reads of the store
        while batch.size and not stop():
            full = batch.size >= self.batch_rows
            after = {**self.state.cursors(batch.source), **batch.last}
            ahead = self._reader().submit(self.read_batch, after, batch.source) if full else None
            try:
                self.ship(batch)
            except BaseException:
                if ahead is not None:
                    ahead.cancel() or ahead.exception()     # the read finishes; dropped
                raise
            shipped += batch.size
            if ahead is None:
                break
            if shipped == batch.size:    # a backlog: say so once (counting costs a scan)
                self._set(SinkState.SHIPPING)
            self.heartbeat()             # a long replay still says it is alive
            batch = ahead.result()
            if not batch.size and batch.source != self.status.source_id:
                batch = self.first_batch()     # the store was replaced meanwhile
        if shipped:
            log.debug("shipped %d rows", shipped)
        self._set(SinkState.CAUGHT_UP, error="")
        self.heartbeat()
        return shipped

    def _reader(self) -> ThreadPoolExecutor:
        """The read-ahead thread: one for the Shipper's life. A thread per catch-up would
        leave each batch's memory in another of glibc's per-thread arenas (seen as 16 MiB
        more peak RSS while retrying through an outage)."""
        if self._read_ahead is None:
            self._read_ahead = ThreadPoolExecutor(1, thread_name_prefix="netwarden-sink-read")
        return self._read_ahead

    def close(self) -> None:
        """Stop the read-ahead thread and drop the connection."""
        if self._read_ahead is not None:
            self._read_ahead.shutdown(wait=True)
            self._read_ahead = None
        self._drop_connection()

    def heartbeat(self) -> bool:
        """Tell the server this sink is alive (every ``heartbeat_s``); True if one was sent."""
        now = self._clock()
        if now - self._last_heartbeat < self.heartbeat_s:
            return False
        status = self.status
        columns = ["source_id", *self._columns[HEARTBEATS.name]]
        self._commit("writing a heartbeat", [outgoing_rows(self.target.dialect, HEARTBEATS.name,
                                                           columns, [(
            status.source_id, int(now * 1000), now, status.state, status.behind_rows,
            status.behind_s, status.shipped_rows, status.error)])])
        self._last_heartbeat = now
        return True

    # ---- the service ----

    def run(self, stop: Callable[[], bool], wait: Callable[[float], None], interval_s: float,
            retry_max_s: float, once: bool = False) -> int:
        """Ship until ``stop()``; with ``once`` until caught up (exit status 0) or the first
        failure (75, EX_TEMPFAIL, the rows still waiting in the store)."""
        try:
            return self._serve(stop, wait, interval_s, retry_max_s, once)
        finally:
            self.close()

    def _serve(self, stop: Callable[[], bool], wait: Callable[[float], None], interval_s: float,
               retry_max_s: float, once: bool) -> int:
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
