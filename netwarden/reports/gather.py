"""Reading what a report holds from a source (the store or a fleet's server) with the queries
the viewers use; no SQL of its own."""

from __future__ import annotations

from netwarden.model import EventKind
from netwarden.store.device_queries import has_discovery_tables
from netwarden.store.event_queries import EventRow, view_events
from netwarden.store.export_queries import health_rows
from netwarden.store.read_source import ReadSource
from netwarden.store.traffic_queries import Filter, TrafficView, traffic_totals
from netwarden.store.watch_queries import has_watch_tables, outage_summary
from netwarden.view import report as shape

#: Events a report reads, at most, per kind: a period with more (a flood of sensor errors)
#: lists and counts only the newest this many (view_events reads newest first).
EVENT_LIMIT = 10_000


def _events(source: ReadSource, since: float, until: float, kind: EventKind) -> list[EventRow]:
    return view_events(source, since, until, (kind.value,), limit=EVENT_LIMIT)


def gather(source: ReadSource, period: str, since: float, until: float,
           top: int) -> shape.Report:
    """The report of flows whose window starts in [since, until) and events in that span."""
    view = TrafficView(int(since), int(until))
    by_exe = traffic_totals(source, "exe", view)
    unnamed = TrafficView(view.since, view.until, (Filter("domain", ""),))
    devices = (shape.new_devices(_events(source, since, until, EventKind.NEW_DEVICE))
               if has_discovery_tables(source) else None)
    hosts = (shape.top_lines(traffic_totals(source, "host", view), 10_000)
             if source.remote else None)
    # The watch's tables are local only (not shipped to a fleet's server).
    outages = (outage_summary(source.conn, since, until)
               if not source.remote and has_watch_tables(source.conn) else None)
    return shape.Report(
        period=period, since=since, until=until, source=source.label,
        sent=sum(int(t.sent) for t in by_exe), recv=sum(int(t.recv) for t in by_exe),
        programs=tuple(shape.top_lines(by_exe, top)),
        destinations=tuple(shape.destinations(traffic_totals(source, "domain", view),
                                              traffic_totals(source, "raddr", unnamed), top)),
        new_programs=tuple(shape.new_programs(
            _events(source, since, until, EventKind.NEW_EXECUTABLE))),
        modified=tuple(shape.modified_executables(
            _events(source, since, until, EventKind.EXE_MODIFIED))),
        new_devices=None if devices is None else tuple(devices),
        sensor_errors=tuple(shape.sensor_error_tally(
            _events(source, since, until, EventKind.SENSOR_ERROR))),
        health=tuple(shape.health_tally((row for row, _host in health_rows(source, since)),
                                        until)),
        hosts=None if hosts is None else tuple(hosts),
        outages=None if outages is None else tuple(outages),
        scans=tuple(shape.port_scans(_events(source, since, until, EventKind.PORT_SCAN))))
