"""The sensor's view of the off-host copy: the sink's lag as health rows, and retention that
deletes rows the server never got is counted and said (health row and sensor_error event)."""

from __future__ import annotations

import time
from pathlib import Path

from netwarden.model import EventKind, HealthSample
from netwarden.sensor.aggregator import Window
from netwarden.sensor.hashing import HashCache
from netwarden.sensor.persist import ProgramResolver, Retention, WindowBatch, WindowWriter
from netwarden.sensor.shipping_watch import ShippingWatch
from netwarden.store.export_queries import export_events, health_rows
from netwarden.store.read_source import local_source
from netwarden.store.sink_state import SinkStateFile
from netwarden.store.sqlite_db import open_readonly
from netwarden.store.sqlite_writer import SqliteWriter
from tests.support.viewer_data import CURL_P, flow

DAY = 86400


def health_totals(db: Path) -> dict[tuple[str, str], int]:
    totals: dict[tuple[str, str], int] = {}
    for row, _host in health_rows(local_source(open_readonly(db))):
        key = (row.source, row.counter)
        totals[key] = totals.get(key, 0) + row.delta
    return totals


def test_lag_is_written_as_deltas_and_follows_the_sink(tmp_path: Path) -> None:
    now = int(time.time())
    store = SqliteWriter(tmp_path / "nw.db", now, group=None, host="h")
    store.write([flow(now - 60, CURL_P, "192.0.2.1", 443, 10, 20)], [], [], now)
    watch = ShippingWatch(tmp_path / "sink.db")
    # The sink never ran: everything is behind.
    first = watch.lag(store, watch.cursors(store), now)
    behind = {s.counter: s.delta for s in first}
    assert behind["behind_rows"] >= 6 and behind["behind_s"] >= 60   # flow, exe, process, ...
    assert watch.lag(store, watch.cursors(store), now) == []  # unchanged: nothing written
    state = SinkStateFile(tmp_path / "sink.db")
    state.advance(store.source_id, {name: seq for name, seq in (
        ("hosts", 1), ("executables", 99), ("processes", 1), ("addresses", 99),
        ("domains", 99), ("flows", 99), ("events", 99), ("health", 99))})
    caught_up = {s.counter: s.delta for s in watch.lag(store, watch.cursors(store), now)}
    assert caught_up == {"behind_rows": -behind["behind_rows"], "behind_s": -behind["behind_s"]}
    state.close()
    store.close()


def test_retention_counts_and_reports_rows_the_sink_never_shipped(tmp_path: Path) -> None:
    now = int(time.time())
    db = tmp_path / "nw.db"
    store = SqliteWriter(db, now - 100 * DAY, group=None, host="h")
    for age in (90, 80, 70):                # three old windows, one flow row each
        store.write([flow(now - age * DAY, CURL_P, "192.0.2.1", 443, 1, 1)], [],
                    [HealthSample(now - age * DAY, "net", "x", 1)], now - age * DAY)
    store.write([flow(now - 60, CURL_P, "192.0.2.1", 443, 1, 1)], [], [], now)
    state = SinkStateFile(tmp_path / "sink.db")
    # The sink shipped the first old flow (id 1) and the first health row, nothing more.
    state.advance(store.source_id, {"flows": 1, "health": 1})
    writer = WindowWriter(store, ProgramResolver(HashCache(), {}, time.time),
                          retention=Retention(30), shipping=ShippingWatch(tmp_path / "sink.db"))
    writer.start()
    writer.submit(WindowBatch(Window(now - 10)))
    writer.stop()
    store.close()
    totals = health_totals(db)
    # Deleted unshipped: flows 2 and 3, health rows 2 and 3, and the new_executable event of
    # the first old window.
    assert totals[("sink", "pruned_unshipped")] == 5
    errors = [e for e, _ in export_events(local_source(open_readonly(db)))
              if e.kind == EventKind.SENSOR_ERROR.value]
    assert [(e.fields["component"], e.fields["rows"]) for e in errors] == [("remote-sink", 5)]
    assert totals[("sink", "behind_rows")] > 0     # the new rows still wait
    state.close()
