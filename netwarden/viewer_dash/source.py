"""Where the web viewer's data comes from: its settings, and one read-only connection per
request: the local store is opened anew (well under a millisecond); a fleet's server's
connections are kept in a small pool, since a login costs a round trip or several (TLS)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from netwarden.model.discovery import KnownDevice
from netwarden.config import ConfigError
from netwarden.reading import ServerSource
from netwarden.store import read_source
from netwarden.store.read_source import ReadSource, local_source
from netwarden.store.remote_db import RemoteError
from netwarden.store.sqlite_db import StoreUnavailable, open_readonly
from netwarden.view.labels import explain_unavailable
from netwarden.view.units import UnitSystem


@dataclass(frozen=True)
class DashSettings:
    db_path: Path
    token: str = ""
    geoip_mmdb: str = ""
    default_range: str = "hour"
    top_n: int = 10
    metrics_top_n: int = 20    # /metrics: executables with their own series ([metrics] top_n)
    refresh_s: int = 10
    clock: Callable[[], float] = time.time
    tz: tzinfo | None = None
    known_devices: tuple[KnownDevice, ...] = ()   # the config's [discovery] known
    server: ServerSource | None = None   # --db URL: a fleet's server instead of the store
    units: UnitSystem = UnitSystem.IEC   # [view] units: tables and chart axes alike

    @property
    def label(self) -> str:
        return self.server.label if self.server is not None else str(self.db_path)


class StoreProblem(RuntimeError):
    """The store cannot answer; the message says why in words."""


@contextmanager
def reading(path: Path, server: ServerSource | None = None) -> Iterator[ReadSource]:
    if server is not None:
        with _reading_server(server) as source:
            yield source
        return
    try:
        conn = open_readonly(path, timeout=2)
    except StoreUnavailable as exc:
        raise StoreProblem(explain_unavailable(exc)) from None
    except OSError as exc:   # e.g. a directory on the path we may not enter
        raise StoreProblem(f"cannot read {path}: {exc.strerror} (join the 'netwarden' "
                           "group, or pass --db PATH)") from None
    try:
        if read_source.schema_version(conn) == 0:
            raise StoreProblem(f"{path} holds no netwarden data yet (no schema). "
                               "Is the sensor writing here?")
        yield local_source(conn, str(path))
    except sqlite3.DatabaseError as exc:
        raise StoreProblem(f"cannot read {path}: {exc}") from None
    finally:
        conn.close()


#: Idle connections kept per server: Dash serves requests on threads, a page's callbacks
#: a few at a time.
POOL_IDLE = 4


class _ServerPool:
    """Connections to a server, each used by one request at a time and then kept for the
    next. One is checked with a trivial query before reuse (a server restarted meanwhile
    closed it): a failed check costs a new login, never a failed page."""

    def __init__(self) -> None:
        self._idle: dict[ServerSource, list[ReadSource]] = {}
        self._lock = threading.Lock()

    def take(self, server: ServerSource) -> ReadSource:
        while True:
            with self._lock:
                idle = self._idle.get(server)
                source = idle.pop() if idle else None
            if source is None:
                return server.open()
            try:
                source.execute("SELECT 1").fetchall()
                return source
            except source.errors:
                _close_quietly(source)

    def give(self, server: ServerSource, source: ReadSource) -> None:
        with self._lock:
            idle = self._idle.setdefault(server, [])
            if len(idle) < POOL_IDLE:
                idle.append(source)
                return
        _close_quietly(source)


def _close_quietly(source: ReadSource) -> None:
    try:
        source.close()
    except source.errors:
        pass


_POOL = _ServerPool()


@contextmanager
def _reading_server(server: ServerSource) -> Iterator[ReadSource]:
    """A pooled connection to the server for one request; one that failed is closed."""
    try:
        source = _POOL.take(server)
    except RemoteError as exc:
        raise StoreProblem(str(exc)) from None
    except ConfigError as exc:      # the reader's password file
        raise StoreProblem(str(exc)) from None
    try:
        yield source
    except source.errors as exc:
        _close_quietly(source)
        raise StoreProblem(f"{server.label}: {str(exc).strip().splitlines()[0]}") from None
    except StoreProblem:            # the page's own finding: the connection is fine
        _POOL.give(server, source)
        raise
    except BaseException:
        _close_quietly(source)
        raise
    _POOL.give(server, source)
