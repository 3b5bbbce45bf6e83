"""The store's schema: ordered migrations, each applied once, recorded in ``schema_version``.

What repeats is normalised (executables with their hashes, addresses, process identities);
the time series, ``flows``, stays narrow and is indexed by time. Migrations are plain SQL in
the portable subset; a dialect table will translate the few differences for MariaDB and
PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from netwarden.store import rollups
from netwarden.store.sqlite_db import transaction


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    # Run after the statements, in their transaction: work SQL alone cannot report on (a
    # long build that must say how far it is).
    build: Callable[[sqlite3.Connection], None] | None = None


#: Column lists that migration 4 rebuilds its tables with (the same as they were made).
_FLOW_COLUMNS = """    time INTEGER NOT NULL,
    host_id INTEGER NOT NULL REFERENCES hosts (id),
    process_id INTEGER NOT NULL REFERENCES processes (id),
    family INTEGER NOT NULL,
    protocol TEXT NOT NULL,
    ip_protocol INTEGER NOT NULL,
    laddr_id INTEGER NOT NULL REFERENCES addresses (id),
    lport INTEGER NOT NULL,
    raddr_id INTEGER NOT NULL REFERENCES addresses (id),
    rport INTEGER NOT NULL,
    domain_id INTEGER REFERENCES domains (id),
    netns INTEGER NOT NULL,
    sent INTEGER NOT NULL,
    recv INTEGER NOT NULL"""
_HEALTH_COLUMNS = """    time INTEGER NOT NULL,
    host_id INTEGER NOT NULL REFERENCES hosts (id),
    source TEXT NOT NULL,
    counter TEXT NOT NULL,
    delta INTEGER NOT NULL"""
_EXEC_COLUMNS = """    time REAL NOT NULL,
    host_id INTEGER NOT NULL REFERENCES hosts (id),
    process_id INTEGER NOT NULL REFERENCES processes (id),
    pid INTEGER NOT NULL"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "hosts, executables, processes, addresses, domains, flows, events, health", (
        # One row per sensor host; a shared server holds many.
        """CREATE TABLE hosts (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE)""",
        """CREATE TABLE executables (
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            sha256 TEXT NOT NULL,
            first_seen INTEGER NOT NULL,
            first_flow INTEGER,
            UNIQUE (path, sha256))""",
        """CREATE TABLE processes (
            id INTEGER PRIMARY KEY,
            exe_id INTEGER NOT NULL REFERENCES executables (id),
            script_id INTEGER REFERENCES executables (id),
            parent_exe_id INTEGER REFERENCES executables (id),
            grandparent_exe_id INTEGER REFERENCES executables (id),
            name TEXT NOT NULL,
            cmdline TEXT NOT NULL,
            uid INTEGER NOT NULL,
            container TEXT NOT NULL DEFAULT '',
            first_seen INTEGER NOT NULL)""",
        """CREATE UNIQUE INDEX processes_identity ON processes (
            exe_id, IFNULL(script_id, 0), IFNULL(parent_exe_id, 0),
            IFNULL(grandparent_exe_id, 0), name, cmdline, uid, container)""",
        """CREATE TABLE addresses (
            id INTEGER PRIMARY KEY,
            addr TEXT NOT NULL UNIQUE)""",
        # Names remote addresses were resolved from (learnt from DNS answers).
        """CREATE TABLE domains (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE)""",
        f"CREATE TABLE flows (\n{_FLOW_COLUMNS})",
        "CREATE INDEX flows_time ON flows (time)",
        "CREATE INDEX flows_process_time ON flows (process_id, time)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time REAL NOT NULL,
            host_id INTEGER NOT NULL REFERENCES hosts (id),
            kind TEXT NOT NULL,
            data TEXT NOT NULL)""",
        "CREATE INDEX events_time ON events (time)",
        f"CREATE TABLE health (\n{_HEALTH_COLUMNS})",
        "CREATE INDEX health_time ON health (time)",
    )),
    # LAN discovery (issue 5), written by `netwarden discovery` through DiscoveryWriter.
    Migration(2, "LAN devices, their addresses, names, services, presence windows; scans; "
                 "known devices", (
        # One row per MAC seen by one host's discovery. open_ports: JSON list of the TCP
        # ports open at the last scan that probed it (NULL: never probed).
        """CREATE TABLE devices (
            id INTEGER PRIMARY KEY,
            host_id INTEGER NOT NULL REFERENCES hosts (id),
            mac TEXT NOT NULL,
            vendor TEXT NOT NULL,
            randomized INTEGER NOT NULL,
            device_type TEXT NOT NULL,
            type_reasons TEXT NOT NULL,
            interface TEXT NOT NULL,
            last_ip TEXT NOT NULL,
            open_ports TEXT,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            UNIQUE (host_id, mac))""",
        # Every address a device used, so IP changes stay visible.
        """CREATE TABLE device_addresses (
            device_id INTEGER NOT NULL REFERENCES devices (id),
            addr TEXT NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            PRIMARY KEY (device_id, addr))""",
        """CREATE TABLE device_names (
            device_id INTEGER NOT NULL REFERENCES devices (id),
            name TEXT NOT NULL,
            method TEXT NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            PRIMARY KEY (device_id, name, method))""",
        # detail: JSON object (UPnP manufacturer/model/location, NetBIOS workgroup, ...).
        """CREATE TABLE device_services (
            device_id INTEGER NOT NULL REFERENCES devices (id),
            method TEXT NOT NULL,
            service TEXT NOT NULL,
            port INTEGER NOT NULL,
            instance TEXT NOT NULL,
            detail TEXT NOT NULL,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL,
            PRIMARY KEY (device_id, method, service, port, instance))""",
        # When a device was here: end is NULL while the window is open; it closes (end =
        # last_seen) once the device has been unseen for [discovery] presence_gap_s.
        """CREATE TABLE presence (
            id INTEGER PRIMARY KEY,
            device_id INTEGER NOT NULL REFERENCES devices (id),
            start REAL NOT NULL,
            last_seen REAL NOT NULL,
            end REAL)""",
        "CREATE INDEX presence_device_start ON presence (device_id, start)",
        "CREATE INDEX presence_times ON presence (start, last_seen)",
        # One row per pass: what ran, what could not and why (JSON), how many devices.
        """CREATE TABLE scans (
            id INTEGER PRIMARY KEY,
            time REAL NOT NULL,
            host_id INTEGER NOT NULL REFERENCES hosts (id),
            interface TEXT NOT NULL,
            subnets TEXT NOT NULL,
            methods TEXT NOT NULL,
            devices INTEGER NOT NULL,
            duration REAL NOT NULL)""",
        "CREATE INDEX scans_time ON scans (time)",
        # Devices named from the CLI (`netwarden known set`); the config's [discovery] known
        # list is merged with these at run time.
        """CREATE TABLE known_devices (
            mac TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            trusted INTEGER NOT NULL,
            updated REAL NOT NULL)""",
    )),
    Migration(3, "persisted executable hashes; every-exec records", (
        # The sensor's sha256 cache: reused after a restart only while the file still has this
        # size, mtime and ctime (checked on first use).
        """CREATE TABLE hash_cache (
            host_id INTEGER NOT NULL REFERENCES hosts (id),
            dev INTEGER NOT NULL,
            ino INTEGER NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            ctime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL,
            path TEXT NOT NULL,
            PRIMARY KEY (host_id, dev, ino))""",
        # One row per exec, in "every executable" mode ([sensor] record_every_exec).
        f"CREATE TABLE execs (\n{_EXEC_COLUMNS})",
        "CREATE INDEX execs_time ON execs (time)",
    )),
)

#: Tables whose rows change after they are written. Each insert and each update of a row gives
#: it a new ``seq`` from the store-wide ``ship_counter``, so the remote sink can ship every
#: change as a new version, append-only (docs/remote.md).
VERSIONED_TABLES = ("executables", "devices", "device_addresses", "device_names",
                    "device_services", "presence", "known_devices")


def _next_seq() -> str:
    return "UPDATE ship_counter SET value = value + 1;"


def _versioning(table: str) -> tuple[str, ...]:
    """A ``seq`` column on ``table``, set from ship_counter by every insert and update.

    The update trigger fires only when the statement left ``seq`` alone (``NEW.seq IS
    OLD.seq``), so its own assignment does not start it again.
    """
    assign = (f"UPDATE {table} SET seq = (SELECT value FROM ship_counter) "
              "WHERE rowid = NEW.rowid;")
    return (
        f"ALTER TABLE {table} ADD COLUMN seq INTEGER",
        f"CREATE TRIGGER {table}_seq_insert AFTER INSERT ON {table} BEGIN "
        f"{_next_seq()} {assign} END",
        f"CREATE TRIGGER {table}_seq_update AFTER UPDATE ON {table} "
        f"WHEN NEW.seq IS OLD.seq BEGIN {_next_seq()} {assign} END",
        # Rows from before this migration get their first seq here (the update trigger).
        f"UPDATE {table} SET seq = seq",
        f"CREATE UNIQUE INDEX {table}_seq ON {table} (seq)",
    )


def _with_sequence(table: str, columns: str, indexes: tuple[str, ...]) -> tuple[str, ...]:
    """Rebuild an append-only ``table`` with ``id INTEGER PRIMARY KEY AUTOINCREMENT``.

    Its implicit rowid could be renumbered by VACUUM and reused after a delete; an
    AUTOINCREMENT key is neither. Existing rows keep their rowid as id (same order).
    """
    names = ", ".join(line.split()[0] for line in columns.split(",\n"))
    return (
        f"CREATE TABLE {table}_new (\n    id INTEGER PRIMARY KEY AUTOINCREMENT,\n{columns})",
        f"INSERT INTO {table}_new (id, {names}) SELECT rowid, {names} FROM {table} "
        "ORDER BY rowid",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_new RENAME TO {table}",
    ) + indexes


MIGRATIONS += (
    # The remote sink (issue 18): every shipped row has a sequence VACUUM cannot renumber,
    # and the store a random source_id, so (host, source_id, sequence) names a row for good.
    Migration(4, "stable row sequences and a source id for the remote sink", (
        """CREATE TABLE store_meta (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL)""",
        "INSERT INTO store_meta (key, value) VALUES ('source_id', lower(hex(randomblob(16))))",
        "CREATE TABLE ship_counter (value INTEGER NOT NULL)",
        "INSERT INTO ship_counter (value) VALUES (0)",
        *_with_sequence("flows", _FLOW_COLUMNS, (
            "CREATE INDEX flows_time ON flows (time)",
            "CREATE INDEX flows_process_time ON flows (process_id, time)")),
        *_with_sequence("health", _HEALTH_COLUMNS, ("CREATE INDEX health_time ON health (time)",)),
        *_with_sequence("execs", _EXEC_COLUMNS, ("CREATE INDEX execs_time ON execs (time)",)),
        # A removed known device is a change too: its tombstone ships like a row.
        """CREATE TABLE known_devices_removed (
            seq INTEGER PRIMARY KEY,
            mac TEXT NOT NULL,
            removed REAL NOT NULL)""",
        *[s for table in VERSIONED_TABLES for s in _versioning(table)],
        "CREATE TRIGGER known_devices_seq_delete AFTER DELETE ON known_devices BEGIN "
        f"{_next_seq()} INSERT INTO known_devices_removed (seq, mac, removed) VALUES "
        "((SELECT value FROM ship_counter), OLD.mac, "
        "(julianday('now') - 2440587.5) * 86400.0); END",
    )),
)

MIGRATIONS += (
    # The connectivity watch (issue 23), written by `netwarden discovery` / `watch run`
    # through WatchWriter. Not shipped to a remote server (yet): docs/watch.md.
    Migration(5, "connectivity watch: targets and groups, up/down windows, latency samples", (
        # One row per target (probe: its text) or group (is_group 1, probe "group").
        """CREATE TABLE watch_targets (
            id INTEGER PRIMARY KEY,
            host_id INTEGER NOT NULL REFERENCES hosts (id),
            name TEXT NOT NULL,
            probe TEXT NOT NULL,
            group_name TEXT NOT NULL,
            is_group INTEGER NOT NULL,
            UNIQUE (host_id, name))""",
        # state 'up' or 'down'; start: the first probe of the run that changed the state;
        # last: the latest probe in it; end is NULL while the window is open. reason: the
        # first failure's (down windows).
        """CREATE TABLE watch_windows (
            id INTEGER PRIMARY KEY,
            target_id INTEGER NOT NULL REFERENCES watch_targets (id),
            state TEXT NOT NULL,
            start REAL NOT NULL,
            last REAL NOT NULL,
            end REAL,
            reason TEXT NOT NULL)""",
        "CREATE INDEX watch_windows_target_start ON watch_windows (target_id, start)",
        "CREATE INDEX watch_windows_start ON watch_windows (start)",
        # One row per probe, latency_ms NULL when it failed; pruned after [watch]
        # sample_days. Keyed by (target, time) without a rowid: about 20 bytes a probe.
        """CREATE TABLE watch_samples (
            target_id INTEGER NOT NULL REFERENCES watch_targets (id),
            time REAL NOT NULL,
            latency_ms REAL,
            PRIMARY KEY (target_id, time)) WITHOUT ROWID""",
    )),
)

MIGRATIONS += (
    # The learning period and the baseline (issue 22; model/baseline.py). Number 6: number 5
    # was given to another branch; migrate() applies a missing lower number when it arrives.
    Migration(6, "baseline mode (learning deadline) and baseline items", (
        # One row per host once `netwarden baseline learn` has run; no row: mode off.
        # revision: moved by every change made from the CLI, so a writer's cache of the
        # baseline's keys knows to reload.
        """CREATE TABLE baseline_mode (
            host_id INTEGER PRIMARY KEY REFERENCES hosts (id),
            started REAL NOT NULL,
            learning_until REAL NOT NULL,
            revision INTEGER NOT NULL,
            updated REAL NOT NULL)""",
        # status: learned | approved (in the baseline) | drift (seen outside it, for review).
        # data: JSON object of the fields that name the thing (path, sha256, port, ip, ...).
        """CREATE TABLE baseline (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            host_id INTEGER NOT NULL REFERENCES hosts (id),
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            status TEXT NOT NULL,
            data TEXT NOT NULL,
            first_seen REAL NOT NULL,
            updated REAL NOT NULL,
            UNIQUE (host_id, kind, key))""",
    )),
)

MIGRATIONS += (
    # Rollups (issue 24): flows summed per hour and per UTC day by process, domain and remote
    # address, so every range reads in about a second (store/rollups.py, docs/rollups.md).
    Migration(7, "rollups of flows per period (15 min to a day) by process, domain, address",
              rollups.local_tables(), rollups.build_local),
)


# The highest number, not the last entry: branches append migrations in merge order.
LATEST_VERSION = max(m.version for m in MIGRATIONS)


class SchemaTooNew(RuntimeError):
    """The database was written by a newer netwarden; refusing to touch it."""


def applied_versions(conn: sqlite3.Connection) -> set[int]:
    row = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                       "AND name = 'schema_version'").fetchone()
    if row is None:
        return set()
    return {int(v) for (v,) in conn.execute("SELECT version FROM schema_version")}


def current_version(conn: sqlite3.Connection) -> int:
    return max(applied_versions(conn), default=0)


def migrate(conn: sqlite3.Connection, now: int, upto: int | None = None) -> list[int]:
    """Apply every migration the database lacks, in order, each in its own transaction.

    ``upto``: stop after that version (the remote schema is derived from a given version).

    Missing versions are applied even below the highest one present: migrations written on
    parallel branches may be numbered out of the order they reach a database in.
    ``conn`` must be in autocommit mode (isolation_level=None) so DDL is transactional too.
    """
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version ("
                 "version INTEGER PRIMARY KEY, description TEXT NOT NULL, "
                 "applied INTEGER NOT NULL)")
    present = applied_versions(conn)
    unknown = present - {m.version for m in MIGRATIONS}
    if unknown:
        raise SchemaTooNew(f"database schema has version(s) {sorted(unknown)} unknown to "
                           f"this netwarden (latest {LATEST_VERSION}); upgrade netwarden")
    applied = []
    for migration in sorted(MIGRATIONS, key=lambda m: m.version):
        if migration.version in present or (upto is not None and migration.version > upto):
            continue
        with transaction(conn):
            for statement in migration.statements:
                conn.execute(statement)
            if migration.build is not None:
                migration.build(conn)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                         (migration.version, migration.description, now))
        applied.append(migration.version)
    return applied
