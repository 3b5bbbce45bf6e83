"""netwarden/view/report.py's pure parts: the period, --until, destinations, escaping, scans."""

from __future__ import annotations

from datetime import timezone

import pytest

from netwarden.store.event_queries import EventRow
from netwarden.store.traffic_queries import TrafficTotal
from netwarden.view.report import (
    Happening, Line, Report, ReportInputError, destinations, parse_until, period_seconds,
    port_scans, render_markdown,
)


def test_periods_and_until() -> None:
    assert [period_seconds(p) for p in ("day", "week", "month")] == [86400, 604800, 2592000]
    with pytest.raises(ReportInputError, match="--period"):
        period_seconds("fortnight")
    assert parse_until(None, 123.0) == 123.0
    assert parse_until("1700000000", 0) == 1_700_000_000
    assert parse_until("2023-11-14T22:13:20", 0, timezone.utc) == 1_700_000_000
    assert parse_until("2023-11-14T23:13:20+01:00", 0) == 1_700_000_000
    for bad in ("soon", "-1", "nan"):
        with pytest.raises(ReportInputError, match="--until"):
            parse_until(bad, 0)


def test_destinations_are_domains_else_addresses_by_total() -> None:
    by_domain = [TrafficTotal("example.org", 10, 90, 0, 0), TrafficTotal("", 500, 500, 0, 0)]
    unnamed = [TrafficTotal("192.0.2.1", 300, 400, 0, 0), TrafficTotal("192.0.2.2", 1, 2, 0, 0)]
    assert destinations(by_domain, unnamed, 2) == [Line("192.0.2.1", 300, 400),
                                                   Line("example.org", 10, 90)]


def test_markdown_escapes_cells_and_says_what_is_not_recorded() -> None:
    report = Report("day", 0, 86400, "s.db", 1, 2, (Line("/opt/a|b<i>*x*", 1, 2),), (), (), (),
                    None, (), ())
    text = render_markdown(report, timezone.utc)
    assert "| /opt/a\\|b\\<i>\\*x\\* | 1 B | 2 B | 3 B |" in text
    assert "no LAN discovery tables" in text
    assert "## Scans seen\n\n_none_" in text
    assert "no connectivity watch tables" in text
    assert "1970-01-01 00:00 UTC to 1970-01-02 00:00 UTC" in text


def test_a_long_scan_is_one_line_with_its_latest_totals() -> None:
    def scan(time: float, report: int, ports: int, state: str, first: float = 1000.0,
             source: str = "192.0.2.66") -> EventRow:
        return EventRow(1, time, "h1", "port_scan", {
            "source": source, "ports": ports, "probe": "syn", "first": first,
            "duration_s": time - first, "state": state, "report": report})
    lines = port_scans([scan(1300, 1, 120, "ongoing"), scan(5000, 3, 900, "ended"),
                        scan(4000, 2, 700, "ongoing"), scan(2060, 1, 40, "ended", first=2000,
                                                            source="198.51.100.7")])
    assert lines == [Happening(1000.0, "h1", "192.0.2.66", "900 ports, syn, over 1 h 6 min, "
                               "ended"),
                     Happening(2000.0, "h1", "198.51.100.7", "40 ports, syn, over 1 min 0 s, "
                               "ended")]
