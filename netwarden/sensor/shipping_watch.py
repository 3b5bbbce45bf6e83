"""How far the off-host copy is behind, seen from the sensor (when [remote] url is set).

The sink keeps its cursors in its own file; the sensor reads them (plain SQLite, no database
driver) after each window, and writes what it finds as health rows: ``sink/behind_rows`` and
``sink/behind_s`` (deltas, so their sum is the current lag), and ``sink/pruned_unshipped``
when retention deletes rows the server never got, with a ``sensor_error`` event: a loss of
the off-host copy is never silent.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from netwarden.model import Event, EventKind, HealthSample
from netwarden.store.sink_state import read_cursors
from netwarden.store.sqlite_db import StoreUnavailable
from netwarden.store.sqlite_writer import SqliteWriter

log = logging.getLogger(__name__)


class ShippingWatch:
    def __init__(self, state_path: Path) -> None:
        self.state_path = state_path
        self._reported = {"behind_rows": 0, "behind_s": 0}

    def cursors(self, store: SqliteWriter) -> dict[str, int]:
        """The sink's cursors for this store ({} before it first shipped: all is behind)."""
        try:
            return read_cursors(self.state_path, store.source_id) or {}
        except (StoreUnavailable, sqlite3.Error) as exc:
            log.debug("sink state %s unreadable: %s", self.state_path, exc)
            return {}

    def lag(self, store: SqliteWriter, shipped: dict[str, int],
            now: float) -> list[HealthSample]:
        """Health rows moving the reported lag (rows past the sink's cursors ``shipped``)
        to the current one (none if unchanged)."""
        rows, oldest = store.shipping_backlog(shipped)
        current = {"behind_rows": rows,
                   "behind_s": 0 if oldest is None else max(0, int(now - oldest))}
        samples = [HealthSample(int(now), "sink", name, value - self._reported[name])
                   for name, value in current.items() if value != self._reported[name]]
        self._reported = current
        return samples

    @staticmethod
    def pruned_unshipped(count: int, now: float) -> tuple[list[Event], list[HealthSample]]:
        if count <= 0:
            return [], []
        event = Event.of(now, EventKind.SENSOR_ERROR, component="remote-sink", state="loss",
                         message=f"retention deleted {count} rows the remote server never got "
                                 "(the sink is behind or stopped; see netwarden sink --status)",
                         rows=count)
        return [event], [HealthSample(int(now), "sink", "pruned_unshipped", count)]
