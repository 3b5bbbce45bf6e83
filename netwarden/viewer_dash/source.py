"""Where the web viewer's data comes from: its settings, and one read-only connection per
request (the server is threaded; opening costs well under a millisecond)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import tzinfo
from pathlib import Path

from netwarden.model.discovery import KnownDevice
from netwarden.store import queries
from netwarden.store.sqlite_db import StoreUnavailable, open_readonly
from netwarden.view.labels import explain_unavailable


@dataclass(frozen=True)
class DashSettings:
    db_path: Path
    token: str = ""
    geoip_mmdb: str = ""
    default_range: str = "hour"
    top_n: int = 10
    refresh_s: int = 10
    clock: Callable[[], float] = time.time
    tz: tzinfo | None = None
    known_devices: tuple[KnownDevice, ...] = ()   # the config's [discovery] known


class StoreProblem(RuntimeError):
    """The store cannot answer; the message says why in words."""


@contextmanager
def reading(path: Path) -> Iterator[sqlite3.Connection]:
    try:
        conn = open_readonly(path, timeout=2)
    except StoreUnavailable as exc:
        raise StoreProblem(explain_unavailable(exc)) from None
    except OSError as exc:   # e.g. a directory on the path we may not enter
        raise StoreProblem(f"cannot read {path}: {exc.strerror} (join the 'netwarden' "
                           "group, or pass --db PATH)") from None
    try:
        if queries.schema_version(conn) == 0:
            raise StoreProblem(f"{path} holds no netwarden data yet (no schema). "
                               "Is the sensor writing here?")
        yield conn
    except sqlite3.DatabaseError as exc:
        raise StoreProblem(f"cannot read {path}: {exc}") from None
    finally:
        conn.close()
