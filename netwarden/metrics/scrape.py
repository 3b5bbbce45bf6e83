"""One scrape: read what the store added since the last one, answer the exposition text.
Shared by the standalone exporter and the web viewer's /metrics."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from netwarden.metrics.counting import StoreCounter
from netwarden.metrics.exposition import render
from netwarden.metrics.families import build
from netwarden.store.read_source import schema_version
from netwarden.store.sqlite_db import StoreUnavailable, open_readonly

log = logging.getLogger(__name__)


def scrape(counter: StoreCounter, db_path: Path) -> str:
    """The exposition text after reading ``db_path`` (read-only). A store that cannot be read
    is no error here: the text says so (netwarden_store_up 0) with the counters as they were,
    so a locked or missing store never makes the series vanish."""
    problem = _observe(counter, db_path)
    was = counter.snapshot().store_problem
    if problem:
        if problem != was:
            log.warning("metrics: %s", problem)
        counter.unavailable(problem)
    return render(build(counter.snapshot()))


def _observe(counter: StoreCounter, db_path: Path) -> str:
    """"" when the store was read, else why not."""
    try:
        conn = open_readonly(db_path, timeout=2)
    except StoreUnavailable as exc:
        return str(exc)
    except OSError as exc:   # e.g. a directory on the path we may not enter
        return f"cannot read {db_path}: {exc.strerror}"
    try:
        if schema_version(conn) == 0:
            return f"{db_path} holds no netwarden data yet (no schema)"
        counter.observe(conn)
        return ""
    except sqlite3.Error as exc:
        return f"cannot read {db_path}: {exc}"
    finally:
        conn.close()
