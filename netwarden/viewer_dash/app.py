"""`create_app(settings)`: the Dash page, the executable and devices pages and the JSON API
on one server.

Callbacks are thin: read the store through netwarden.store.*_queries (source.py opens one
read-only connection per request), shape with figures.py; a store that cannot be read becomes
a message on the page. The JSON API and the token gate are in routes.py.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Callable
from urllib.parse import parse_qs

import dash
from dash import Input, Output, State, dash_table, dcc, html

from netwarden.store import device_queries, event_queries, traffic_queries
from netwarden.store.baseline import baseline_summary
from netwarden.store.traffic_queries import DIMENSIONS, Filter, QueryError, TrafficView
from netwarden.view.baseline import baseline_badge, drift_rows
from netwarden.view.devices import device_labels, presence_segments
from netwarden.view.labels import NO_DISCOVERY_TABLES, display_value, format_time
from netwarden.view.ranges import (
    RESOLUTIONS,
    TimeRange,
    auto_bucket,
    bucket_aligned,
    chart_span,
    window,
)
from netwarden.view.units import format_bytes
from netwarden.viewer_dash import figures
from netwarden.viewer_dash.geo import GeoSource, country_totals, open_country_lookup
from netwarden.viewer_dash.prefetch import PrefetchedLayout
from netwarden.viewer_dash.routes import register_api
from netwarden.viewer_dash.source import DashSettings, StoreProblem, reading

__all__ = ["DashSettings", "create_app"]


#: A chosen resolution that would give more points than this falls back to auto.
MAX_BUCKETS = 2000


def _filters(include: list[str] | None, exclude: list[str] | None) -> tuple[Filter, ...]:
    """Multi-select values are 'DIM=VALUE'."""
    result = []
    for values, excluded in ((include or [], False), (exclude or [], True)):
        for item in values:
            dimension, _, value = item.partition("=")
            result.append(Filter(dimension, value, excluded))
    return tuple(result)


def _option(dimension: str, value: object) -> dict[str, str]:
    return {"label": f"{DIMENSIONS[dimension].title}: {display_value(dimension, value)}",
            "value": f"{dimension}={value}"}


def _controls(settings: DashSettings, options: list[dict[str, str]]) -> html.Div:
    ranges = [{"label": f"last {r.label}" if r is not TimeRange.ALL else "all time",
               "value": r.label} for r in TimeRange]
    resolutions = [{"label": "auto", "value": 0}] + [
        {"label": figures._duration(s), "value": s} for s in RESOLUTIONS]
    groupings = [{"label": d.title, "value": d.name} for d in DIMENSIONS.values()]

    def labelled(text: str, control: object, width: str) -> html.Label:
        return html.Label([html.Span(text, className="nw-label"), control],
                          style={"display": "inline-block", "width": width,
                                 "marginRight": "12px", "verticalAlign": "top"})
    return html.Div([
        html.Div([
            labelled("Group by", dcc.Dropdown(id="group", options=groupings, value="exe",
                                              clearable=False), "180px"),
            labelled("Time range", dcc.Dropdown(id="range", options=ranges,
                                                value=settings.default_range,
                                                clearable=False), "150px"),
            labelled("Resolution", dcc.Dropdown(id="resolution", options=resolutions,
                                                value=0, clearable=False), "120px"),
            labelled("Top N", dcc.Input(id="top-n", type="number", min=1, max=100,
                                        value=settings.top_n, debounce=True), "80px"),
            labelled("Bytes", dcc.RadioItems(id="direction", value="total", inline=True,
                                             options=[{"label": d, "value": d}
                                                      for d in figures.DIRECTIONS]), "220px"),
        ]),
        html.Div([
            labelled("Include", dcc.Dropdown(id="include", multi=True, options=options,
                                             placeholder="only these ..."), "45%"),
            labelled("Exclude", dcc.Dropdown(id="exclude", multi=True, options=options,
                                             placeholder="all but these ..."), "45%"),
        ], style={"marginTop": "8px"}),
    ])


def _layout(settings: DashSettings, views: "Views") -> html.Div:
    """The page, with the overview's chart already drawn: the first chart arrives with the
    layout instead of one callback round trip later. What is below it (the top table, the
    filters' options, the countries) is fetched once the chart has been drawn (`details`):
    rendering a 50-row table of Dash components and 400 dropdown options cost ~250 ms of the
    browser's time before the chart could be drawn."""
    chart, problem = views.chart_or_problem(
        "exe", settings.default_range, 0, settings.top_n, "total", [], [])
    main = html.Div(id="main-page", children=[
        _controls(settings, []),
        dcc.Graph(id="traffic-chart", figure=chart, config={"displaylogo": False}),
        html.H3("Top entries"),
        html.Table(id="top-table", className="nw-table", children=_top_table([])),
        html.H3("Remote countries"),
        html.Div(id="countries"),
        html.H3("Drift from the baseline"),
        html.Div(id="drift-list"),
        dcc.Store(id="details-shown", data=False),
        # Should the chart never report being drawn (see `details`), fetch them anyway.
        dcc.Interval(id="details-fallback", interval=3000, max_intervals=1),
    ])
    return html.Div([
        dcc.Location(id="url"),
        html.Div([html.A("netwarden", href="/", className="nw-brand"),
                  html.Span("which programs talk to the network, how much, to whom",
                            className="nw-note"),
                  html.A("LAN devices", href="/devices", id="devices-link"),
                  html.A("Connectivity", href="/watch", id="watch-link"),
                  html.A("Fleet", href="/fleet", id="fleet-link"),
                  html.Span(id="baseline-badge", className="nw-badge")], className="nw-top"),
        html.Div(problem, id="store-status", className="nw-alert"),
        main,
        html.Div(id="exe-page", style={"display": "none"}),
        _devices_page(),
        dcc.Interval(id="refresh", interval=max(1, settings.refresh_s) * 1000,
                     disabled=settings.refresh_s == 0),
    ], style={"margin": "12px 16px"})


NO_BASELINE = ("The baseline is one host's and is not shipped to a fleet server: open this "
               "host's store (--db PATH) to see its mode and drift.")

#: Presence timeline ranges offered on the devices page.
PRESENCE_RANGES = ("hour", "day", "week", "month", "all")


def _devices_page() -> html.Div:
    """The devices page's frame; its table and timeline come from the `devices` callback, so
    the DataTable's script loads only when this page is opened."""
    ranges = [{"label": f"last {r}" if r != "all" else "all time", "value": r}
              for r in PRESENCE_RANGES]
    return html.Div(id="devices-page", style={"display": "none"}, children=[
        html.P(html.A("<- back to the overview", href="/")),
        html.H2("LAN devices"),
        html.P("Found by `netwarden discovery` (or `netwarden scan --record`); known names "
               "and trust from `netwarden known` and [discovery] known.", className="nw-note"),
        html.Div(id="devices-status", className="nw-alert"),
        html.Div(id="devices-content"),
        html.Label([html.Span("Presence over", className="nw-label"),
                    dcc.Dropdown(id="presence-range", options=ranges, value="day",
                                 clearable=False)],
                   style={"display": "inline-block", "width": "180px", "marginTop": "8px"}),
        dcc.Graph(id="presence-chart", config={"displaylogo": False}),
    ])


class Views:
    """What the callbacks compute, given the settings (kept apart from Dash's wiring)."""

    def __init__(self, settings: DashSettings, geo: GeoSource) -> None:
        self.settings = settings
        self.geo = geo

    def main(self, group: str, range_label: str, resolution: int, top_n: int | None,
             direction: str, include: list[str] | None, exclude: list[str] | None,
             chart: bool = True, details: bool = True):
        """(chart, top table, countries section, problem); the parts not asked for are
        dash.no_update."""
        now = self.settings.clock()
        win = window(TimeRange.parse(range_label), 0, now)
        view = TrafficView(win.since, win.until, _filters(include, exclude))
        figure = table = countries = dash.no_update
        with reading(self.settings.db_path, self.settings.server) as conn:
            totals = traffic_queries.traffic_totals(conn, group, view)
            if chart:
                figure = self._chart(conn, win, now, totals, group, view, range_label,
                                     resolution, top_n, direction)
            if details:
                by_address = (traffic_queries.traffic_totals(conn, "raddr", view)
                              if self.geo.lookup else [])
                table = _top_table(figures.totals_table(totals, group, 50, self.settings.tz,
                                                         self.settings.units))
                countries = self._countries(by_address)
        return figure, table, countries, ""

    def _chart(self, conn: sqlite3.Connection, win, now: float, totals: list, group: str,
               view: TrafficView, range_label: str, resolution: int, top_n: int | None,
               direction: str):
        shown = chart_span(win, traffic_queries.flow_time_bounds(conn), now)
        origin, span = shown.origin, shown.span
        bucket = int(resolution or 0)
        if not bucket or span // bucket > MAX_BUCKETS:
            bucket = auto_bucket(span)
        first_bin, bins_span = bucket_aligned(origin, span, bucket)
        points = traffic_queries.traffic_series(conn, group, view, first_bin, bucket)
        keep = figures.top_values(totals, int(top_n or self.settings.top_n), direction)
        frame = figures.series_frame(points, group, keep, direction, self.settings.tz,
                                     figures.bucket_starts(first_bin, bins_span, bucket))
        title = (f"Bytes ({direction}) by {DIMENSIONS[group].title}, "
                 f"{'all time' if win.since is None else 'last ' + range_label}")
        if shown.zoomed:
            title += f" (recorded since {format_time(origin, self.settings.tz, False)[:5]})"
        return figures.traffic_figure(frame, bucket, title, self.settings.units)

    def chart_or_problem(self, group: str, range_label: str, resolution: int,
                         top_n: int | None, direction: str, include: list[str] | None,
                         exclude: list[str] | None):
        """(chart, problem): the overview's chart alone, for the page's first draw."""
        chart, _, _, problem = self.main_or_problem(group, range_label, resolution, top_n,
                                                    direction, include, exclude,
                                                    details=False)
        return chart, problem

    def _countries(self, by_address: list) -> list:
        """The GeoIP note, and the chart when there is a database (no hidden empty chart)."""
        note = html.P(self.geo.describe(self.settings.clock()), className="nw-note",
                      id="geoip-note")
        if self.geo.lookup is None:
            return [note]
        return [note, dcc.Graph(id="countries-chart", config={"displaylogo": False},
                                figure=figures.countries_figure(
                                    country_totals(by_address, self.geo.lookup),
                                    units=self.settings.units))]

    def main_or_problem(self, group: str, range_label: str, resolution: int,
                        top_n: int | None, direction: str, include: list[str] | None,
                        exclude: list[str] | None, chart: bool = True, details: bool = True):
        """main(), or an empty page saying what is wrong with the store."""
        try:
            return self.main(group, range_label, resolution, top_n, direction, include,
                             exclude, chart, details)
        except (StoreProblem, QueryError) as exc:
            empty = figures.traffic_figure(figures.series_frame([], group, []), 60, "",
                                           self.settings.units)
            return empty, _top_table([]), self._countries([]), str(exc)

    def options(self, group: str, range_label: str, selected: list[str]) -> list[dict]:
        win = window(TimeRange.parse(range_label), 0, self.settings.clock())
        with reading(self.settings.db_path, self.settings.server) as conn:
            totals = traffic_queries.traffic_totals(conn, group, TrafficView(win.since, win.until))
        options = [_option(group, row.value) for row in totals[:200]]
        known = {o["value"] for o in options}
        for item in selected:
            if item not in known:
                dimension, _, value = item.partition("=")
                options.append(_option(dimension, value))
        return options

    def executable(self, path: str) -> list:
        tz = self.settings.tz
        size = functools.partial(format_bytes, system=self.settings.units)
        with reading(self.settings.db_path, self.settings.server) as conn:
            versions = traffic_queries.executable_versions(conn, path)
            view = TrafficView(filters=(Filter("exe", path),))
            sections = {name: traffic_queries.traffic_totals(conn, name, view)
                        for name in ("parent", "user", "domain", "name")}
            by_address = traffic_queries.traffic_totals(conn, "raddr", view) if self.geo.lookup \
                else []
            events = event_queries.view_events(conn, path=path, limit=200)
        if not versions:
            return [html.H2(path), html.P("This executable is not in the store.",
                                          id="exe-missing")]
        first_seen = min(v.first_seen for v in versions)
        content = [
            html.H2(path, id="exe-title"),
            html.P(f"First seen {format_time(first_seen, tz)}; "
                   f"{len(versions)} version(s) by sha256.", id="exe-first-seen"),
            dcc.Graph(id="exe-versions-chart", figure=figures.versions_figure(versions, tz),
                      config={"displaylogo": False}),
            _table("exe-versions", ["sha256", "first seen", "first traffic", "last traffic",
                                    "sent", "received"],
                   [[v.sha256, format_time(v.first_seen, tz), format_time(v.first_traffic, tz),
                     format_time(v.last_traffic, tz), size(v.sent),
                     size(v.recv)] for v in versions]),
        ]
        for name, title in (("parent", "Parents"), ("user", "Users"), ("domain", "Domains"),
                            ("name", "Process names")):
            content += [html.H3(title), _table(
                f"exe-{name}", [DIMENSIONS[name].title, "sent", "received", "last seen"],
                [[display_value(name, r.value), size(r.sent), size(r.recv),
                  format_time(r.last_seen, tz)] for r in sections[name][:50]])]
        content += [html.H3("Remote countries"),
                    html.P(self.geo.describe(self.settings.clock()), className="nw-note",
                           id="exe-geoip-note")]
        if self.geo.lookup is not None:
            content.append(dcc.Graph(id="exe-countries-chart", figure=figures.countries_figure(
                country_totals(by_address, self.geo.lookup), units=self.settings.units),
                config={"displaylogo": False}))
        content += [html.H3("Modifications and first network use"), _table(
            "exe-events", ["time", "kind", "details"],
            [[format_time(e.time, tz), e.kind, ", ".join(
                f"{k}={v}" for k, v in sorted(e.fields.items()) if k != "path")]
             for e in events])]
        return content

    def baseline(self) -> tuple[str, list]:
        """The header's baseline badge and the drift list (newest 50 drift events)."""
        with reading(self.settings.db_path, self.settings.server) as conn:
            summary = baseline_summary(conn, self.settings.clock())
            events = event_queries.view_events(conn, kinds=("drift",), limit=50)
        badge = baseline_badge(summary, self.settings.tz)
        if summary is None:
            return "", [html.P(NO_BASELINE, id="drift-none")]
        rows = drift_rows(events, self.settings.tz)
        if not rows:
            return badge, [html.P(f"No drift ({badge or 'the baseline is off'}).",
                                  id="drift-none")]
        return badge, [_table("drift-table", ["time", "drift", "what", "item"], rows)]

    def devices(self, range_label: str) -> tuple[list[dict[str, object]], object]:
        """(the devices table's records, the presence timeline figure)."""
        now = self.settings.clock()
        win = window(TimeRange.parse(range_label), 0, now)
        with reading(self.settings.db_path, self.settings.server) as conn:
            if not device_queries.has_discovery_tables(conn):
                raise StoreProblem(NO_DISCOVERY_TABLES)
            rows = device_queries.devices(conn, self.settings.known_devices)
            windows = device_queries.presence_windows(conn, since=win.since or 0, until=win.until)
        segments = presence_segments(windows, device_labels(rows), now)
        title = ("Presence on the LAN, " + ("all time" if win.since is None
                                            else f"last {range_label}"))
        span = None if win.since is None else (win.since, now)
        return figures.device_rows(rows, self.settings.tz), \
            figures.presence_figure(segments, title, self.settings.tz, span)


    def watch(self) -> list[object]:
        """The connectivity page: each target's state and uptime per day and week, the last
        day's latency, the outages of the last week."""
        from netwarden.store import watch_queries
        from netwarden.view import watch as shape
        now, tz = self.settings.clock(), self.settings.tz
        with reading(self.settings.db_path, self.settings.server) as source:
            if source.remote or not watch_queries.has_watch_tables(source.conn):
                return [html.H2("Connectivity"), html.P(shape.NO_WATCH_TABLES, id="watch-none")]
            rows = watch_queries.statuses(source.conn, now)
            samples = watch_queries.latency_samples(source.conn, now - watch_queries.DAY_S)
            outages = watch_queries.outages(source.conn, now - watch_queries.WEEK_S)
        if not rows:
            return [html.H2("Connectivity"), html.P(shape.NO_TARGETS, id="watch-none")]
        down = sum(1 for r in rows if r.state == "down")
        return [html.H2(f"Connectivity: {len(rows)} targets and groups, {down} down"),
                _table("watch-table", list(shape.STATUS_HEADER), shape.status_rows(rows, tz)),
                dcc.Graph(id="latency-chart", config={"displaylogo": False},
                          figure=figures.latency_figure(samples, "Latency, last day", tz)),
                html.H3("Outages, last week"),
                _table("outages-table", list(shape.OUTAGE_HEADER),
                       shape.outage_rows(outages, now, tz))]

    def fleet(self) -> list[object]:
        """The fleet page: each host shipping to the server, its last heartbeat, its lag and
        its state."""
        if self.settings.server is None:
            return [html.H2("Fleet"), html.P(NO_FLEET, id="fleet-none")]
        from netwarden.store.fleet_queries import fleet_hosts
        now, tz = self.settings.clock(), self.settings.tz
        with reading(self.settings.db_path, self.settings.server) as conn:
            hosts = fleet_hosts(conn)
        rows = [[h.host, format_time(h.last_heartbeat, tz), f"{now - h.last_heartbeat:.0f} s",
                 h.state, str(h.behind_rows), f"{h.behind_s:.0f} s", h.error] for h in hosts]
        return [html.H2(f"Fleet: {len(hosts)} hosts shipping to {self.settings.label}"),
                _table("fleet-table", ["host", "last heartbeat", "ago", "state",
                                       "rows behind", "seconds behind", "last error"], rows)]


NO_FLEET = ("The fleet page reads a server: start the viewer with --db URL (a reader role, "
            "e.g. postgresql://READER@HOST:5432/netwarden); see docs/remote.md.")

NO_DEVICES = ("No LAN devices recorded yet: the discovery service (`netwarden discovery`) or "
              "`netwarden scan --record` records them.")


def _devices_table(records: list[dict[str, object]]) -> dash_table.DataTable:
    return dash_table.DataTable(
        id="devices-table", data=records, page_size=100, sort_action="native",
        filter_action="native",
        columns=[{"id": key, "name": title} for key, title in figures.device_columns(records)],
        # The page refreshes every refresh_s; the user's sort and filter survive it.
        persistence=True, persistence_type="memory",
        style_table={"overflowX": "auto"},
        # The page's colour variables (assets/netwarden.css), so the table follows its scheme.
        style_cell={"fontFamily": "monospace", "fontSize": "13px", "textAlign": "left",
                    "maxWidth": "260px", "whiteSpace": "normal",
                    "backgroundColor": "var(--nw-bg)", "color": "var(--nw-fg)",
                    "borderColor": "var(--nw-grid)"},
        style_filter={"backgroundColor": "var(--nw-surface)", "color": "var(--nw-fg)"},
        style_header={"fontWeight": "bold", "backgroundColor": "var(--nw-surface)",
                      "color": "var(--nw-fg)"})


#: The top-entries table's columns: (heading, key of figures.totals_table's rows).
TOP_COLUMNS = (("value", "value"), ("sent", "sent"), ("received", "recv"), ("total", "total"),
               ("first seen", "first_seen"), ("last seen", "last_seen"))


def _top_table(rows: list[dict[str, object]]) -> list:
    """A plain HTML table: Dash's DataTable would add ~630 KB of script to the first load."""
    def cell(row: dict[str, object], key: str) -> html.Td:
        if key == "value" and row["link"]:
            return html.Td(html.A(str(row["value"]), href=str(row["link"]),
                                  title=str(row["full"])), className="nw-value")
        if key == "value":
            return html.Td(str(row["value"]), title=str(row["full"]), className="nw-value")
        return html.Td(str(row[key]), className="nw-num")
    return [html.Thead(html.Tr([html.Th(title) for title, _ in TOP_COLUMNS])),
            html.Tbody([html.Tr([cell(row, key) for _, key in TOP_COLUMNS]) for row in rows])]


def _table(table_id: str, header: list[str], rows: list[list[str]]) -> html.Table:
    if not rows:
        return html.Table(id=table_id, children=[html.Tr(html.Td("none recorded"))])
    return html.Table(id=table_id, className="nw-table", children=[
        html.Thead(html.Tr([html.Th(h) for h in header])),
        html.Tbody([html.Tr([html.Td(cell) for cell in row]) for row in rows])])


def _register_callbacks(app: dash.Dash, views: Views) -> None:
    shown, hidden = {"display": "block"}, {"display": "none"}

    @app.callback(Output("main-page", "style"), Output("exe-page", "style"),
                  Output("exe-page", "children"), Output("devices-page", "style"),
                  Input("url", "pathname"), Input("url", "search"),
                  Input("refresh", "n_intervals"))
    def route(pathname: str | None, search: str | None, _tick):
        # The refresh tick redraws the connectivity page only (the others refresh their own
        # parts, or are a snapshot by design).
        if dash.ctx.triggered_id == "refresh" and pathname != "/watch":
            return dash.no_update, dash.no_update, dash.no_update, dash.no_update
        pages: dict[str, Callable[[], list]] = {
            "/exe": lambda: views.executable(
                (parse_qs((search or "").lstrip("?")).get("path") or [""])[0]),
            "/fleet": views.fleet, "/watch": views.watch}
        if pathname in pages:
            try:
                body = pages[pathname]()
            except StoreProblem as exc:
                body = [html.P(str(exc))]
            back = html.P(html.A("<- back to the overview", href="/"))
            return hidden, shown, [back, *body], hidden
        if pathname == "/devices":
            return hidden, hidden, [], shown
        return shown, hidden, [], hidden

    @app.callback(Output("baseline-badge", "children"), Output("drift-list", "children"),
                  Input("url", "pathname"), Input("refresh", "n_intervals"))
    def baseline(pathname: str | None, _tick):
        try:
            badge, content = views.baseline()
        except StoreProblem:
            return "", []   # the store's problem is said in store-status already
        return badge, content

    @app.callback(Output("devices-content", "children"), Output("presence-chart", "figure"),
                  Output("devices-status", "children"),
                  Input("url", "pathname"), Input("presence-range", "value"),
                  Input("refresh", "n_intervals"))
    def devices(pathname: str | None, range_label: str, _tick):
        if pathname != "/devices":
            return dash.no_update, dash.no_update, dash.no_update
        try:
            records, figure = views.devices(range_label)
        except StoreProblem as exc:
            return [], figures.presence_figure([], "Presence on the LAN"), str(exc)
        if not records:
            return [html.P(NO_DEVICES, id="devices-none")], figure, ""
        return [_devices_table(records)], figure, ""

    @app.callback(Output("include", "options"), Output("exclude", "options"),
                  Input("group", "value"), Input("range", "value"),
                  Input("refresh", "n_intervals"),
                  State("include", "value"), State("exclude", "value"),
                  prevent_initial_call=True)   # `details` brings the first options
    def filter_options(group, range_label, _tick, include, exclude):
        try:
            options = views.options(group, range_label, (include or []) + (exclude or []))
        except StoreProblem:
            options = []
        return options, options

    @app.callback(Output("traffic-chart", "figure"), Output("top-table", "children"),
                  Output("countries", "children"), Output("store-status", "children"),
                  Input("group", "value"), Input("range", "value"),
                  Input("resolution", "value"), Input("top-n", "value"),
                  Input("direction", "value"), Input("include", "value"),
                  Input("exclude", "value"), Input("refresh", "n_intervals"),
                  prevent_initial_call=True)   # the layout carries the first chart
    def update(group, range_label, resolution, top_n, direction, include, exclude, _tick):
        return views.main_or_problem(group, range_label, resolution, top_n, direction,
                                     include, exclude)

    # What is below the first chart, once that chart is drawn: dcc.Graph reports its first
    # plot as relayoutData {"autosize": True}. Later relayouts (zoom, pan) change nothing
    # here; `update` keeps the details current from then on.
    @app.callback(Output("top-table", "children", allow_duplicate=True),
                  Output("countries", "children", allow_duplicate=True),
                  Output("include", "options", allow_duplicate=True),
                  Output("exclude", "options", allow_duplicate=True),
                  Output("details-shown", "data"),
                  Input("traffic-chart", "relayoutData"),
                  Input("details-fallback", "n_intervals"),
                  State("details-shown", "data"),
                  State("group", "value"), State("range", "value"),
                  State("direction", "value"), State("include", "value"),
                  State("exclude", "value"),
                  prevent_initial_call=True)
    def details(_relayout, _fallback, shown, group, range_label, direction, include, exclude):
        if shown:
            return (dash.no_update,) * 5
        _, table, countries, _ = views.main_or_problem(
            group, range_label, 0, None, direction, include, exclude, chart=False)
        try:
            options = views.options(group, range_label, (include or []) + (exclude or []))
        except StoreProblem:
            options = []
        return table, countries, options, options, True


def create_app(settings: DashSettings) -> dash.Dash:
    """A Dash app over `settings.db_path`; `app.server` is the Flask server to run.

    assets/ holds plotly.js's 'basic' bundle (scatter, bar, pie; 1.2 MB, from the npm package
    plotly.js-basic-dist-min at the version the pinned plotly ships): loaded with the page, it
    sets window.Plotly, so dcc.Graph never fetches the full 4.8 MB bundle, whose compilation
    was most of a first visit's wait. Every chart here is scatter or bar.
    """
    app = dash.Dash(__name__, title="netwarden", update_title=None, serve_locally=True)
    views = Views(settings, open_country_lookup(settings.geoip_mmdb))
    # Drawn anew for each visit, starting when the page itself is asked for.
    layout = PrefetchedLayout(functools.partial(_layout, settings, views))
    app.layout = layout

    @app.server.before_request
    def prefetch_layout() -> None:
        from flask import request
        if request.method == "GET" and request.path == app.config.requests_pathname_prefix:
            layout.prefetch()
    _register_callbacks(app, views)
    register_api(app, settings)
    return app
