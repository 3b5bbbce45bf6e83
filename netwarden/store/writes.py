"""What both writers of the store (the sensor's and discovery's) write the same way: opening
the store for one host, and its events and health rows."""

from __future__ import annotations

import json
import socket
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from netwarden.model import Event, HealthSample
from netwarden.store.schema import migrate
from netwarden.store.sqlite_db import open_writer, transaction


@dataclass(frozen=True)
class HostStore:
    """A writer's connection, migrated, and the host it writes as."""

    conn: sqlite3.Connection
    host: str
    host_id: int


def open_host_store(path: Path, now: float, group: str | None, owner: str | None,
                    host: str | None) -> HostStore:
    """Open (create, migrate) the store and make sure ``host`` (default: this machine's
    name) has its row."""
    conn = open_writer(path, group, owner)
    migrate(conn, int(now))
    name = host or socket.gethostname()
    with transaction(conn):
        conn.execute("INSERT OR IGNORE INTO hosts (name) VALUES (?)", (name,))
    (host_id,) = conn.execute("SELECT id FROM hosts WHERE name = ?", (name,)).fetchone()
    return HostStore(conn, name, int(host_id))


def insert_events(conn: sqlite3.Connection, host_id: int, events: Sequence[Event]) -> None:
    """Events in time order (ids follow time within one write)."""
    conn.executemany(
        "INSERT INTO events (time, host_id, kind, data) VALUES (?, ?, ?, ?)",
        [(e.time, host_id, e.kind.value, json.dumps(e.field_dict(), sort_keys=True))
         for e in sorted(events, key=lambda e: e.time)])


def insert_health(conn: sqlite3.Connection, host_id: int,
                  samples: Sequence[HealthSample]) -> None:
    conn.executemany(
        "INSERT INTO health (time, host_id, source, counter, delta) VALUES (?, ?, ?, ?, ?)",
        [(h.time, host_id, h.source, h.counter, h.delta) for h in samples])
