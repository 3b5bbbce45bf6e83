"""The single writer of the SQLite store: one transaction per write window."""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from netwarden.model import (
    Event,
    EventKind,
    ExecRow,
    Executable,
    FlowRow,
    HashRecord,
    HealthSample,
    ProgramIdentity,
)
from netwarden.model.baseline import ListeningPort, Mode, flow_facts, listen_fact
from netwarden.store.baseline import BaselineRecorder
from netwarden.store.rollups import DAY, FlowFigures, subtract_flows
from netwarden.store.shipping import source_id, total_backlog
from netwarden.store.sqlite_db import close_writer, transaction
from netwarden.store.writes import insert_events, insert_health, open_host_store


class Pruned(NamedTuple):
    deleted: int
    unshipped: int      # of those, rows the remote sink had not shipped yet


class SqliteWriter:
    """Writes one host's rows (``host``: this machine's name unless told otherwise)."""

    def __init__(self, path: Path, now: int, group: str | None = "netwarden",
                 owner: str | None = None, host: str | None = None) -> None:
        self.path = path
        store = open_host_store(path, now, group, owner, host)
        self._conn, self.host, self._host_id = store.conn, store.host, store.host_id
        self._exe_ids: dict[Executable, int] = {}
        self._networked: set[int] = set()
        self._address_ids: dict[str, int] = {}
        self._domain_ids: dict[str, int] = {}
        self._process_ids: dict[ProgramIdentity, int] = {}
        self._baseline = BaselineRecorder(self._host_id)

    def close(self) -> None:
        close_writer(self._conn)

    def load_hash_cache(self) -> list[HashRecord]:
        return [HashRecord(*row) for row in self._conn.execute(
            "SELECT dev, ino, size, mtime_ns, ctime_ns, sha256, path FROM hash_cache "
            "WHERE host_id = ?", (self._host_id,))]

    def unclean_stop(self) -> tuple[float, float] | None:
        """When this host's previous sensor run ended without its ``sensor_stopped`` (killed,
        out of memory, power lost): (when it started, the last time it wrote anything);
        None after a clean stop or on a new store."""
        last = self._conn.execute(
            "SELECT kind, time FROM events WHERE host_id = ? AND kind IN "
            "('sensor_started', 'sensor_stopped') ORDER BY id DESC LIMIT 1",
            (self._host_id,)).fetchone()
        if last is None or last[0] != "sensor_started":
            return None
        started = float(last[1])
        # Each table's newest row by its time index (host_id checked on that row only).
        written = [row[0] for table in ("flows", "events", "health") for row in
                   self._conn.execute(f"SELECT MAX(time) FROM {table} WHERE time >= ? "  # fixed
                                      "AND host_id = ?", (started, self._host_id))
                   if row[0] is not None]
        return started, max([started, *written])

    def _carry_key(self) -> str:
        return f"carry_batch:{self._host_id}"

    def committed_batch(self) -> int:
        """The newest window (by the sensor's carry number) this host's store committed."""
        row = self._conn.execute("SELECT value FROM store_meta WHERE key = ?",
                                 (self._carry_key(),)).fetchone()
        return int(row[0]) if row else 0

    def last_written(self) -> float | None:
        """The newest time of any row or event of this host (None: nothing yet)."""
        # Down the time index to this host's newest row (MAX with a WHERE would scan).
        times = [row[0] for table in ("flows", "events", "health") for row in
                 self._conn.execute(f"SELECT time FROM {table} WHERE host_id = ? "  # fixed
                                    "ORDER BY time DESC LIMIT 1", (self._host_id,))]
        return max(times) if times else None

    def latest_hash_by_path(self) -> dict[str, str]:
        """Each executable path's most recently recorded sha256 (to notice changes)."""
        return {path: sha for path, sha in self._conn.execute(
            "SELECT path, sha256 FROM executables WHERE sha256 != '' ORDER BY id")}

    def write(self, rows: Sequence[FlowRow], events: Sequence[Event],
              health: Sequence[HealthSample], now: int,
              hashes: Sequence[HashRecord] = (),
              seen: Sequence[Executable] = (), execs: Sequence[ExecRow] = (),
              listening: Sequence[ListeningPort] = (),
              carry_batch: int = 0) -> list[Event]:
        """Write one window atomically. Returns the events it wrote, its own included.

        ``seen``: executables to record although none of their flows is stored (ignored).
        ``listening``: this host's listening ports now (for the baseline).
        ``carry_batch``: the window's number in the sensor's kernel `carry` map, recorded in
        the same transaction (so a restart knows whether the kernel's copy was committed).
        """
        written = list(events)
        try:
            with transaction(self._conn):
                baseline = self._baseline.mode(self._conn, now)
                # With a baseline, a new program is told by it (learned silently, or a drift
                # event): new_executable says so in its `baseline` field and is not notified.
                mark = {} if baseline.mode is Mode.OFF else {"baseline": baseline.mode.value}
                for exe in seen:
                    self._exe_id(exe, now)
                self._conn.executemany(
                    "INSERT INTO execs (time, host_id, process_id, pid) VALUES (?, ?, ?, ?)",
                    [(e.time, self._host_id, self._process_id(e.program, now), e.pid)
                     for e in execs])
                self._conn.executemany(
                    "INSERT OR REPLACE INTO hash_cache (host_id, dev, ino, size, mtime_ns, "
                    "ctime_ns, sha256, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(self._host_id,) + tuple(h) for h in hashes])
                flow_values = []
                figures = FlowFigures()
                for row in rows:
                    process_id = self._process_id(row.program, now)
                    exe_id = self._exe_id(row.program.exe, now)
                    if exe_id not in self._networked and self._mark_networked(exe_id, row.time):
                        written.append(Event.of(row.first_seen or row.time,
                                                EventKind.NEW_EXECUTABLE,
                                                path=row.program.exe.path,
                                                sha256=row.program.exe.sha256,
                                                name=row.program.name, uid=row.program.uid,
                                                **mark))
                    flow_values.append((
                        row.time, self._host_id, process_id, row.family, row.protocol,
                        row.ip_protocol, self._address_id(row.laddr), row.lport,
                        self._address_id(row.raddr), row.rport, self._domain_id(row.domain),
                        row.netns, row.sent, row.recv))
                    values = flow_values[-1]
                    figures.add(row.time, self._host_id, {"process_id": process_id,
                                                          "domain_id": values[10] or 0,
                                                          "raddr_id": values[8]},
                                row.sent, row.recv)
                self._conn.executemany(
                    "INSERT INTO flows (time, host_id, process_id, family, protocol, "
                    "ip_protocol, laddr_id, lport, raddr_id, rport, domain_id, netns, sent, "
                    "recv) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", flow_values)
                # Same transaction: a reader never sees rows its rollups lack, or the reverse.
                figures.write(self._conn)
                if baseline.mode is not Mode.OFF:
                    facts = flow_facts(rows, listening) + [listen_fact(p) for p in listening]
                    written += self._baseline.observe(self._conn, facts, now, baseline)
                written.sort(key=lambda e: e.time)
                insert_events(self._conn, self._host_id, written)
                insert_health(self._conn, self._host_id, health)
                if carry_batch:
                    self._conn.execute(
                        "INSERT OR REPLACE INTO store_meta (key, value) VALUES (?, ?)",
                        (self._carry_key(), str(carry_batch)))
        except BaseException:
            # Ids cached inside the rolled-back transaction no longer exist.
            self._exe_ids.clear()
            self._networked.clear()
            self._address_ids.clear()
            self._domain_ids.clear()
            self._process_ids.clear()
            self._baseline.forget()
            raise
        return written

    #: Tables whose old rows retention deletes, with their time column.
    PRUNED_TABLES = ("flows", "events", "health", "execs")

    def prune_before(self, cutoff: float, batch: int,
                     shipped: Mapping[str, int] | None = None) -> Pruned:
        """Delete up to ``batch`` rows older than ``cutoff`` from each time-series table, in
        one short transaction (call again while ``deleted`` is > 0).

        ``shipped``: the remote sink's cursors (table -> highest sequence the server has);
        then ``unshipped`` counts the deleted rows the server never got.

        Flows go by whole UTC days (the cutoff's day is kept), and leave the rollups in the
        same transaction, so their first and last times stay those of the rows kept.
        """
        deleted = unshipped = 0
        with transaction(self._conn):
            for table in self.PRUNED_TABLES:
                if table == "flows":
                    cutoff_here: float = int(cutoff) - int(cutoff) % DAY
                else:
                    cutoff_here = cutoff
                oldest = (f"SELECT rowid FROM {table} WHERE time < ? "  # noqa: S608 - fixed
                          "ORDER BY rowid LIMIT ?")
                if shipped is not None:
                    unshipped += self._conn.execute(
                        f"SELECT COUNT(*) FROM {table} WHERE rowid IN ({oldest}) AND rowid > ?",
                        (cutoff_here, batch, shipped.get(table, 0))).fetchone()[0]
                if table == "flows":
                    subtract_flows(self._conn, f"rowid IN ({oldest})", (cutoff_here, batch))
                cursor = self._conn.execute(f"DELETE FROM {table} WHERE rowid IN ({oldest})",
                                            (cutoff_here, batch))
                deleted += cursor.rowcount
        return Pruned(deleted, unshipped)

    @functools.cached_property
    def source_id(self) -> str:
        """The store's random id (what the remote sink's cursors are kept under); made by
        migration 4, never changed."""
        return source_id(self._conn)

    def shipping_backlog(self, shipped: Mapping[str, int]) -> tuple[int, float | None]:
        """Rows the remote sink has not shipped past ``shipped`` (its cursors), and the
        oldest one's time."""
        return total_backlog(self._conn, shipped)

    def _exe_id(self, exe: Executable, now: int) -> int:
        cached = self._exe_ids.get(exe)
        if cached is not None:
            return cached
        self._conn.execute("INSERT OR IGNORE INTO executables (path, sha256, first_seen) "
                           "VALUES (?, ?, ?)", (exe.path, exe.sha256, now))
        exe_id, first_flow = self._conn.execute(
            "SELECT id, first_flow FROM executables WHERE path = ? AND sha256 = ?",
            (exe.path, exe.sha256)).fetchone()
        if first_flow is not None:
            self._networked.add(exe_id)
        self._exe_ids[exe] = exe_id
        return exe_id

    def _mark_networked(self, exe_id: int, time: int) -> bool:
        """Record the first flow of an executable; True if no executable at its path had
        networked before (a new program, not a new version: that is exe_modified's news)."""
        cursor = self._conn.execute(
            "UPDATE executables SET first_flow = ? WHERE id = ? AND first_flow IS NULL",
            (time, exe_id))
        self._networked.add(exe_id)
        if cursor.rowcount != 1:
            return False
        earlier = self._conn.execute(
            "SELECT 1 FROM executables WHERE path = (SELECT path FROM executables WHERE id = ?) "
            "AND id != ? AND first_flow IS NOT NULL LIMIT 1", (exe_id, exe_id)).fetchone()
        return earlier is None

    def _optional_exe_id(self, exe: Executable | None, now: int) -> int | None:
        return None if exe is None else self._exe_id(exe, now)

    def _address_id(self, address: str) -> int:
        return self._interned("addresses", "addr", address, self._address_ids)

    def _domain_id(self, name: str) -> int | None:
        return self._interned("domains", "name", name, self._domain_ids) if name else None

    def _interned(self, table: str, column: str, value: str, cache: dict[str, int]) -> int:
        """The id of ``value`` in a table of unique values (addresses, domains), made once."""
        cached = cache.get(value)
        if cached is not None:
            return cached
        self._conn.execute(f"INSERT OR IGNORE INTO {table} ({column}) VALUES (?)",  # fixed
                           (value,))
        (value_id,) = self._conn.execute(f"SELECT id FROM {table} WHERE {column} = ?",
                                         (value,)).fetchone()
        cache[value] = value_id
        return value_id

    def _process_id(self, program: ProgramIdentity, now: int) -> int:
        cached = self._process_ids.get(program)
        if cached is not None:
            return cached
        ids = (self._exe_id(program.exe, now), self._optional_exe_id(program.script, now),
               self._optional_exe_id(program.parent, now),
               self._optional_exe_id(program.grandparent, now))
        identity = ids + (program.name, program.cmdline, program.uid, program.container)
        self._conn.execute(
            "INSERT OR IGNORE INTO processes (exe_id, script_id, parent_exe_id, "
            "grandparent_exe_id, name, cmdline, uid, container, first_seen) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", identity + (now,))
        (process_id,) = self._conn.execute(
            "SELECT id FROM processes WHERE exe_id = ? AND IFNULL(script_id, 0) = IFNULL(?, 0) "
            "AND IFNULL(parent_exe_id, 0) = IFNULL(?, 0) "
            "AND IFNULL(grandparent_exe_id, 0) = IFNULL(?, 0) "
            "AND name = ? AND cmdline = ? AND uid = ? AND container = ?", identity).fetchone()
        self._process_ids[program] = process_id
        return process_id

