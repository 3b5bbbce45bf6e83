from __future__ import annotations

import pytest

from netwarden.view.labels import display_value, explain_unavailable, format_time
from netwarden.view.ranges import TimeRange, Window, auto_bucket, window
from netwarden.view.units import ByteUnit, UnitSystem, axis_unit, format_bytes


def test_ranges_cycle_in_the_documented_order():
    labels = []
    current = TimeRange.MINUTE
    for _ in TimeRange:
        labels.append(current.label)
        current = current.next()
    assert labels == ["minute", "hour", "day", "week", "month", "all"]
    assert current is TimeRange.MINUTE
    assert TimeRange.MINUTE.next(-1) is TimeRange.ALL


def test_window_ends_now_and_steps_back_by_whole_ranges():
    assert window(TimeRange.HOUR, 0, 10_000.4) == Window(10_001 - 3600, 10_001)
    assert window(TimeRange.HOUR, 2, 10_000) == Window(10_001 - 3 * 3600, 10_001 - 2 * 3600)
    assert window(TimeRange.ALL, 5, 10_000) == Window(None, None)


def test_parse_names_what_is_allowed():
    assert TimeRange.parse("week") is TimeRange.WEEK
    with pytest.raises(ValueError, match="known: minute, hour"):
        TimeRange.parse("year")


@pytest.mark.parametrize("span, bucket", [(60, 10), (3600, 60), (86400, 900),
                                          (7 * 86400, 4 * 3600), (30 * 86400, 6 * 3600),
                                          (400 * 86400, 4 * 86400)])
def test_auto_bucket_keeps_charts_near_120_points(span: int, bucket: int):
    assert auto_bucket(span) == bucket
    assert span / auto_bucket(span) <= 120


@pytest.mark.parametrize("count, unit, text", [
    (812, ByteUnit.AUTO, "812 B"), (1536, ByteUnit.AUTO, "1.5 KiB"),
    (3 * 1024 ** 3, ByteUnit.AUTO, "3.0 GiB"), (1536, ByteUnit.B, "1536 B"),
    (1536, ByteUnit.MIB, "0.0 MiB"), (5 << 20, ByteUnit.KIB, "5120.0 KiB"),
    (0, ByteUnit.AUTO, "0 B")])
def test_format_bytes(count: int, unit: ByteUnit, text: str):
    assert format_bytes(count, unit) == text


@pytest.mark.parametrize("count, unit, text", [
    (812, ByteUnit.AUTO, "812 B"), (1536, ByteUnit.AUTO, "1.5 kB"), (999, ByteUnit.AUTO, "999 B"),
    (3 * 1000 ** 3, ByteUnit.AUTO, "3.0 GB"), (1536, ByteUnit.MIB, "0.0 MB"),
    (5_000_000, ByteUnit.KIB, "5000.0 kB")])
def test_format_bytes_si(count: int, unit: ByteUnit, text: str):
    assert format_bytes(count, unit, UnitSystem.SI) == text


def test_unit_systems_parse_and_axis_units_follow_them():
    assert UnitSystem.parse("SI") is UnitSystem.SI and UnitSystem.parse("iec") is UnitSystem.IEC
    with pytest.raises(ValueError, match="known: iec, si"):
        UnitSystem.parse("binary")
    # 1,000,000 bytes: a MB in SI, but still under a MiB in IEC.
    assert axis_unit(1_000_000, UnitSystem.SI).label_in(UnitSystem.SI) == "MB"
    assert axis_unit(1_000_000, UnitSystem.IEC).label_in(UnitSystem.IEC) == "KiB"


def test_units_cycle_b_kib_mib_gib_auto():
    seen, unit = [], ByteUnit.B
    for _ in ByteUnit:
        seen.append(unit.label)
        unit = unit.next()
    assert seen == ["B", "KiB", "MiB", "GiB", "auto"]


def test_empty_values_get_words_and_users_names():
    assert display_value("domain", "") == "(unknown)"
    assert display_value("container", "") == "(host)"
    assert display_value("parent", "") == "(none)"
    assert display_value("user", 1000, lambda uid: "alice") == "1000 (alice)"
    assert display_value("user", 4242, lambda uid: "") == "4242"
    assert display_value("rport", 443) == "443"


def test_times_are_shown_in_the_given_zone():
    from datetime import timezone
    assert format_time(0, timezone.utc) == "01-01 00:00"
    assert format_time(3661, timezone.utc, with_date=False) == "01:01:01"
    assert format_time(None, timezone.utc) == "-"


def test_a_missing_wal_index_is_explained():
    text = explain_unavailable(RuntimeError("cannot open x: attempt to write a readonly database"))
    assert "sensor is not running" in text


def test_a_young_store_is_charted_from_its_first_minute():
    from netwarden.view.ranges import ChartSpan, chart_span
    now = 100_000.0
    hour = window(TimeRange.HOUR, 0, now)
    assert hour == Window(96_401, 100_001)
    # Four minutes of data in a fresh store: five minutes shown, not a sliver of an hour.
    assert chart_span(hour, (99_790, 99_990), now) == ChartSpan(99_701, 300, True)
    # Twenty minutes of data: from the first row's minute on.
    assert chart_span(hour, (98_810, 99_990), now) == ChartSpan(98_760, 1241, True)
    # A store older than the range, or empty: the whole range.
    assert chart_span(hour, (50_000, 99_990), now) == ChartSpan(96_401, 3600)
    assert chart_span(hour, None, now) == ChartSpan(96_401, 3600)
    # 'all' covers the store's rows.
    assert chart_span(Window(None, None), (1000, 4000), now) == ChartSpan(1000, 3001)
