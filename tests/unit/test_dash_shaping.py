"""The web viewer's pure parts: figures from rows, request parameters, the token rule."""

from __future__ import annotations

from datetime import timezone

import pytest

from netwarden.store.device_queries import DeviceRow, PresenceRow
from netwarden.store.traffic_queries import (
    ExecutableVersion,
    Filter,
    SeriesPoint,
    TrafficTotal,
)
from netwarden.view.devices import presence_segments
from netwarden.view.units import UnitSystem
from netwarden.viewer_dash import figures
from netwarden.viewer_dash.api import (
    ApiError,
    check_bind,
    is_loopback,
    parse_devices_query,
    parse_events_query,
    parse_flows_query,
    token_matches,
)
from netwarden.viewer_dash.geo import PRIVATE, UNKNOWN, country_totals

UTC = timezone.utc
TOTALS = [TrafficTotal("/a", 100, 900, 0, 60), TrafficTotal("/b", 5000, 0, 0, 0),
          TrafficTotal("/c", 1, 1, 0, 0), TrafficTotal("/idle", 0, 0, 0, 0)]


def test_top_values_rank_by_the_chosen_direction():
    assert figures.top_values(TOTALS, 2) == ["/b", "/a"]
    assert figures.top_values(TOTALS, 5, "recv") == ["/a", "/c"]
    assert figures.top_values(TOTALS, 1, "sent") == ["/b"]


def test_series_frame_folds_the_rest_into_other_and_fills_gaps():
    points = [SeriesPoint(0, "/a", 10, 1), SeriesPoint(0, "/c", 2, 2),
              SeriesPoint(120, "/a", 5, 0), SeriesPoint(120, "/d", 1, 0)]
    frame = figures.series_frame(points, "exe", ["/a"], "total", UTC, buckets=[0, 60, 120])
    got = [(str(t.time()), s, b) for t, s, b in frame.itertuples(index=False)]
    assert got == [("00:00:00", "/a", 11), ("00:01:00", "/a", 0), ("00:02:00", "/a", 5),
                   ("00:00:00", "(other)", 4), ("00:01:00", "(other)", 0),
                   ("00:02:00", "(other)", 1)]
    sent = figures.series_frame(points, "exe", ["/a"], "sent", UTC)
    assert sent["bytes"].tolist() == [10, 5, 2, 1]


def test_series_labels_use_the_display_words():
    frame = figures.series_frame([SeriesPoint(0, "", 1, 1)], "domain", [""], tz=UTC)
    assert frame["series"].tolist() == ["(unknown)"]


def test_traffic_figure_stacks_one_bar_trace_per_series():
    frame = figures.series_frame([SeriesPoint(0, "/a", 1, 1), SeriesPoint(0, "/b", 3, 0)],
                                 "exe", ["/b", "/a"], tz=UTC)
    figure = figures.traffic_figure(frame, 60, "t")
    assert [t.name for t in figure.data] == ["/b", "/a"]
    # Bars that fill their bin from its start, stacked: no line across empty bins.
    assert {t.type for t in figure.data} == {"bar"} and figure.layout.barmode == "stack"
    assert figure.data[0].offset == 0 and figure.data[0].width == 60_000 * figures.BAR_FILL
    assert list(figure.data[0].y) == [3]
    assert figure.layout.yaxis.title.text == "B per min"
    assert figure.layout.xaxis.hoverformat == "%Y-%m-%d %H:%M"
    assert figures.traffic_figure(frame, 10, "t").layout.xaxis.hoverformat.endswith("%S")
    # Axes that grow the margins make plotly.js draw the chart twice (docstring).
    assert figure.layout.xaxis.automargin is False and figure.layout.yaxis.automargin is False
    empty = figures.traffic_figure(figures.series_frame([], "exe", []), 300, "t")
    assert not empty.data and empty.layout.annotations[0].text == "no traffic in this range"


def test_the_axis_unit_is_the_tables_unit_system():
    """The y axis is scaled into one unit named in its title, in the tables' system; the
    hover text is the table's text for the same bytes."""
    mib = 1 << 20
    points = [SeriesPoint(0, "/a", 3 * mib, 0), SeriesPoint(60, "/a", 0, mib // 2),
              SeriesPoint(0, "/b", 2 * mib, 0)]
    frame = figures.series_frame(points, "exe", ["/a", "/b"], tz=UTC, buckets=[0, 60, 120])
    iec = figures.traffic_figure(frame, 60, "t")
    assert iec.layout.yaxis.title.text == "MiB per min"    # the stacked bin: 5 MiB
    assert list(iec.data[0].y) == [3.0, 0.5, 0.0]           # empty bins are zero bars
    assert list(iec.data[0].customdata) == ["3.0 MiB", "512.0 KiB", "0 B"]
    table = figures.totals_table([TrafficTotal("/a", 3 * mib, mib // 2, 0, 0)], "exe", 1)
    assert table[0]["sent"] == "3.0 MiB"
    si = figures.traffic_figure(frame, 60, "t", UnitSystem.SI)
    assert si.layout.yaxis.title.text == "MB per min"
    assert list(si.data[0].y) == [3 * mib / 1e6, mib / 2 / 1e6, 0.0]
    assert si.data[0].customdata[0] == "3.1 MB"
    assert figures.totals_table([TrafficTotal("/a", 3 * mib, 0, 0, 0)], "exe", 1,
                                units=UnitSystem.SI)[0]["sent"] == "3.1 MB"
    # No plotly SI suffixes ('3M') on the scaled ticks.
    assert iec.layout.yaxis.exponentformat == "none"


def test_long_paths_keep_the_program_name_and_hover_shows_all():
    long = "/home/someone/.local/share/Steam/ubuntu12_32/steam-runtime/usr/bin/steamwebhelper"
    frame = figures.series_frame([SeriesPoint(0, long, 1, 1)], "exe", [long], tz=UTC)
    trace = figures.traffic_figure(frame, 60, "t").data[0]
    assert len(trace.name) <= figures.LEGEND_WIDTH and trace.name.endswith("/steamwebhelper")
    assert trace.name.startswith("/home/") and "\u2026" in trace.name
    assert long in trace.hovertemplate
    row = figures.totals_table([TrafficTotal(long, 1, 1, 0, 0)], "exe", 1)[0]
    assert row["full"] == long and row["value"].endswith("/bin/steamwebhelper")


def test_bucket_starts_cover_the_span():
    assert figures.bucket_starts(100, 300, 60) == [100, 160, 220, 280, 340]


def test_table_rows_link_executables_to_their_page():
    rows = figures.totals_table(TOTALS, "exe", 2, UTC)
    assert (rows[0]["value"], rows[0]["link"]) == ("/a", "/exe?path=%2Fa")
    assert rows[0]["total"] == "1000 B" and rows[0]["last_seen"] == "01-01 00:01"
    assert len(rows) == 2
    unknown = figures.totals_table([TrafficTotal("", 1, 1, 0, 0)], "domain", 5)[0]
    assert (unknown["value"], unknown["link"]) == ("(unknown)", "")


def test_countries_and_versions_figures():
    countries = country_totals(
        [TrafficTotal("93.184.216.34", 10, 20, 0, 0), TrafficTotal("93.184.216.35", 1, 1, 0, 0),
         TrafficTotal("10.0.0.5", 100, 100, 0, 0), TrafficTotal("1.2.3.4", 1, 0, 0, 0),
         TrafficTotal("", 1, 0, 0, 0)],
        {"93.184.216.34": "US United States", "93.184.216.35": "US United States"}.get)
    assert [(c.country, c.total, c.addresses) for c in countries] == [
        (PRIVATE, 200, 1), ("US United States", 32, 2), (UNKNOWN, 2, 2)]
    bars = figures.countries_figure(countries)
    assert list(bars.data[0].y) == [UNKNOWN, "US United States", PRIVATE]
    assert bars.layout.xaxis.title.text == "B" and list(bars.data[0].x) == [2, 32, 200]
    versions = [ExecutableVersion("a" * 64, 0, 0, 0, 3600, 1, 1),
                ExecutableVersion("b" * 64, 7200, None, None, None, 0, 0)]
    timeline = figures.versions_figure(versions, UTC)
    assert [t.name for t in timeline.data] == ["a" * 16, "b" * 16]


def args(**kw: object) -> dict[str, list[str]]:
    return {k: v if isinstance(v, list) else [str(v)] for k, v in kw.items()}


def test_flows_parameters():
    query = parse_flows_query(args(range="day", offset=1, include=["exe:/usr/bin/curl",
                                                                   "domain:"],
                                   exclude=["rport:53"], group="raddr", limit=5), now=200_000)
    assert (query.view.since, query.view.until) == (200_001 - 2 * 86400, 200_001 - 86400)
    assert query.view.filters == (Filter("exe", "/usr/bin/curl"), Filter("domain", ""),
                                  Filter("rport", "53", exclude=True))
    assert (query.group, query.limit, query.page) == ("raddr", 5, 0)
    explicit = parse_flows_query(args(since=10, until=20), now=0)
    assert (explicit.view.since, explicit.view.until) == (10, 20)
    assert parse_flows_query(args(range="all"), now=5).view.since is None


@pytest.mark.parametrize("bad, message", [
    (args(range="year"), "range: unknown time range 'year'"),
    (args(include="exe"), "include: wants DIM:VALUE"),
    (args(include="colour:red"), "unknown grouping 'colour'"),
    (args(exclude="rport:https"), "remote port must be a number"),
    (args(limit=0), "limit: must be from 1 to 100000"),
    (args(limit="lots"), "limit: wants an integer"),
    (args(since="yesterday"), "since: wants epoch seconds"),
    (args(group="colour"), "group: unknown grouping"),
    (args(range=["day", "hour"]), "range: give it once"),
])
def test_bad_parameters_are_named(bad: dict[str, list[str]], message: str):
    with pytest.raises(ApiError, match=message):
        parse_flows_query(bad, now=0)


def test_events_parameters():
    query = parse_events_query(args(kind=["exe_modified", "new_executable"], path="/x",
                                    since=1.5, after_id=7))
    assert (query.kinds, query.path, query.since, query.after_id, query.limit) == (
        ("exe_modified", "new_executable"), "/x", 1.5, 7, 1000)


def test_binding_beyond_loopback_needs_a_token():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert is_loopback(host)
        check_bind(host, "")
    for host in ("0.0.0.0", "::", "192.0.2.1", "example.org"):
        assert not is_loopback(host)
        with pytest.raises(ApiError, match="set a bearer token"):
            check_bind(host, "")
        check_bind(host, "s3cret")


def test_token_is_compared_from_the_header_or_the_cookie():
    assert token_matches("", None, None)
    assert token_matches("s3cret", "Bearer s3cret", None)
    assert token_matches("s3cret", None, "s3cret")
    assert not token_matches("s3cret", None, None)
    assert not token_matches("s3cret", "Bearer wrong", None)
    assert not token_matches("s3cret", "Basic s3cret", None)


PI = DeviceRow(mac="b8:27:eb:12:34:56", ip="10.78.0.11", ips=["10.78.0.11"],
               vendor="Raspberry Pi Foundation", randomized=False,
               device_type="single-board computer", type_reasons=["vendor Raspberry Pi"],
               names=[{"name": "raspi.local", "method": "mdns"}],
               services=[{"service": "_ssh._tcp", "method": "mdns", "port": 22,
                          "instance": "pi"}],
               open_ports=[22, 80], interface="eth0", first_seen=0, last_seen=7200,
               known_name="kitchen pi", trusted=True, present=True)


def test_device_rows_spell_out_the_flags():
    (row,) = figures.device_rows([PI], UTC)
    assert list(row) == [key for key, _ in figures.DEVICE_COLUMNS]
    assert (row["name"], row["names"], row["open_ports"], row["services"]) == (
        "kitchen pi", "raspi.local (mdns)", "22,80", "_ssh._tcp")
    assert (row["here"], row["known"], row["trusted"], row["random"], row["last_seen"]) == (
        "yes", "yes", "yes", "no", "01-01 02:00")
    phone = PI._replace(mac="da:a1:19:00:00:14", known_name="", trusted=False, present=False,
                        randomized=True, open_ports=None)
    (row,) = figures.device_rows([phone], UTC)
    assert (row["here"], row["known"], row["random"], row["open_ports"]) == (
        "no", "no", "yes", "-")


def test_presence_figure_one_trace_per_device_one_bar_per_window():
    windows = [PresenceRow("m1", 0, 600, 600), PresenceRow("m1", 3000, 3500, None),
               PresenceRow("m2", 1200, 1800, 1800)]
    segments = presence_segments(windows, {"m1": "kitchen pi"}, now=3600)
    figure = figures.presence_figure(segments, "Presence", UTC, span=(0, 3600))
    assert [(t.type, t.name, len(t.base)) for t in figure.data] == [
        ("bar", "kitchen pi", 2), ("bar", "m2", 1)]
    assert list(figure.data[0].x) == [600_000, 600_000]      # the open window ends now
    assert [str(x) for x in figure.layout.xaxis.range] == ["1970-01-01 00:00:00",
                                                          "1970-01-01 01:00:00"]
    empty = figures.presence_figure([], "Presence")
    assert not empty.data and "no device was on the LAN" in empty.layout.annotations[0].text


def test_devices_parameters():
    query = parse_devices_query({}, now=100_000)
    assert (query.since, query.until, query.mac) == (100_001 - 86400, 100_001, None)
    query = parse_devices_query({"mac": ["B8-27-EB-12-34-56"], "since": ["5"]}, now=100_000)
    assert (query.since, query.mac) == (5, "b8:27:eb:12:34:56")
    assert parse_devices_query({"range": ["all"]}, now=1).since is None
    with pytest.raises(ApiError, match="mac: wants a MAC address"):
        parse_devices_query({"mac": ["kitchen"]}, now=1)
    with pytest.raises(ApiError, match="range: unknown time range"):
        parse_devices_query({"range": ["year"]}, now=1)
