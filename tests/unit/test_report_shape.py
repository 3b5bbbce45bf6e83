"""netwarden/view/report.py's pure parts: the period, --until, destinations, escaping."""

from __future__ import annotations

from datetime import timezone

import pytest

from netwarden.store.traffic_queries import TrafficTotal
from netwarden.view.report import (
    NOT_RECORDED, Line, Report, ReportInputError, destinations, parse_until, period_seconds,
    render_markdown,
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
    assert text.count(f"_{NOT_RECORDED}_") == 1
    assert "no connectivity watch tables" in text
    assert "1970-01-01 00:00 UTC to 1970-01-02 00:00 UTC" in text
