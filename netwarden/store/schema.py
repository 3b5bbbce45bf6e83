"""The store's schema: ordered migrations, each applied once, recorded in ``schema_version``.

What repeats is normalised (executables with their hashes, addresses, process identities);
the time series, ``flows``, stays narrow and is indexed by time. Migrations are plain SQL in
the portable subset; a dialect table will translate the few differences for MariaDB and
PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from netwarden.store.sqlite_db import transaction


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]


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
        """CREATE TABLE flows (
            time INTEGER NOT NULL,
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
            recv INTEGER NOT NULL)""",
        "CREATE INDEX flows_time ON flows (time)",
        "CREATE INDEX flows_process_time ON flows (process_id, time)",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time REAL NOT NULL,
            host_id INTEGER NOT NULL REFERENCES hosts (id),
            kind TEXT NOT NULL,
            data TEXT NOT NULL)""",
        "CREATE INDEX events_time ON events (time)",
        """CREATE TABLE health (
            time INTEGER NOT NULL,
            host_id INTEGER NOT NULL REFERENCES hosts (id),
            source TEXT NOT NULL,
            counter TEXT NOT NULL,
            delta INTEGER NOT NULL)""",
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
        """CREATE TABLE execs (
            time REAL NOT NULL,
            host_id INTEGER NOT NULL REFERENCES hosts (id),
            process_id INTEGER NOT NULL REFERENCES processes (id),
            pid INTEGER NOT NULL)""",
        "CREATE INDEX execs_time ON execs (time)",
    )),
)

LATEST_VERSION = MIGRATIONS[-1].version


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


def migrate(conn: sqlite3.Connection, now: int) -> list[int]:
    """Apply every migration the database lacks, in order, each in its own transaction.

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
    for migration in MIGRATIONS:
        if migration.version in present:
            continue
        with transaction(conn):
            for statement in migration.statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?, ?)",
                         (migration.version, migration.description, now))
        applied.append(migration.version)
    return applied
