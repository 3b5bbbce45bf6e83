"""Pure shaping for the web viewer: store rows -> DataFrames -> plotly Figures and tables.

No Dash, no store: the callbacks in app.py query, then call these.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from datetime import datetime, tzinfo
from typing import cast
from urllib.parse import quote

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from netwarden.store.device_queries import DeviceRow
from netwarden.store.traffic_queries import ExecutableVersion, SeriesPoint, TrafficTotal
from netwarden.view.devices import device_table_records
from netwarden.view.labels import display_value, format_time, shorten_path
from netwarden.view.units import UnitSystem, axis_unit, format_bytes
from netwarden.viewer_dash.geo import CountryTotal

OTHER = "(other)"
DIRECTIONS = ("total", "sent", "recv")


#: Series colours that read on the light and the dark page alike (Vega's "tableau10").
COLOURWAY = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#eeca3b", "#b279a2",
             "#ff9da6", "#9d755d", "#bab0ac")
#: "(other)" is the rest, not a program: a neutral grey.
OTHER_COLOUR = "#8b949e"
#: Legend names longer than this lose the middle of their directory (full path on hover).
LEGEND_WIDTH = 42
#: Bars fill this share of their bin, so neighbouring bins stay apart.
BAR_FILL = 0.9


@functools.lru_cache(maxsize=1)
def _template() -> go.layout.Template:
    """netwarden's own plotly template (replacing plotly's default look, whose 7 KB of colour
    scales for twenty trace types the viewer never draws also cost the first chart ~60 ms of
    the browser's time).

    Backgrounds are transparent and the colours are the light scheme's: assets/netwarden.css
    recolours text, grid and hover boxes from the page's variables, so one template serves
    light and dark and a chart follows the browser's scheme without being drawn again."""
    axis = {"gridcolor": "#e3e6ea", "linecolor": "#d0d7de", "zerolinecolor": "#e3e6ea",
            "ticks": "", "title": {"standoff": 8}}
    return go.layout.Template(
        layout={"font": {"family": "system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', "
                                   "sans-serif", "size": 13, "color": "#1f2328"},
                "paper_bgcolor": "rgba(0,0,0,0)", "plot_bgcolor": "rgba(0,0,0,0)",
                "colorway": list(COLOURWAY),
                "title": {"x": 0.0, "xanchor": "left", "font": {"size": 16}},
                "xaxis": dict(axis, showline=True), "yaxis": dict(axis, showline=False),
                "legend": {"bgcolor": "rgba(0,0,0,0)"},
                "modebar": {"bgcolor": "rgba(0,0,0,0)", "color": "#8b949e",
                            "activecolor": COLOURWAY[0]},
                "hoverlabel": {"bgcolor": "#ffffff", "bordercolor": "#d0d7de",
                               "font": {"color": "#1f2328"}, "namelength": -1}},
        data={"bar": [go.Bar(marker={"line": {"width": 0}})]})


def _when(epoch: float, tz: tzinfo | None) -> datetime:
    return datetime.fromtimestamp(epoch, tz).replace(tzinfo=None)


def bucket_starts(origin: int, span_s: int, bucket_s: int) -> list[int]:
    """Every bucket's start in [origin, origin + span_s)."""
    return list(range(origin, origin + span_s, bucket_s))


def top_values(totals: Sequence[TrafficTotal], n: int, direction: str = "total") -> list[object]:
    """The `n` largest values by the chosen direction, largest first."""
    key: Callable[[TrafficTotal], int] = {
        "total": lambda r: r.total, "sent": lambda r: r.sent, "recv": lambda r: r.recv}[direction]
    ranked = sorted((r for r in totals if key(r) > 0), key=lambda r: -key(r))
    return [r.value for r in ranked[:n]]


def series_frame(points: Sequence[SeriesPoint], dimension: str, keep: Sequence[object],
                 direction: str = "total", tz: tzinfo | None = None,
                 buckets: Sequence[int] = ()) -> pd.DataFrame:
    """One row per (bucket, series): the kept values by name, everything else as '(other)'.

    Columns: time (naive local datetime), series (display label), bytes. Series keep the
    order of `keep`, with '(other)' last. Every series gets a row (0 bytes) for each of
    `buckets` it has no traffic in, so stacked areas drop to zero instead of bridging gaps.
    """
    kept = set(keep)
    records: dict[tuple[int, str], int] = {}
    names = {display_value(dimension, point.value) if point.value in kept else OTHER
             for point in points}
    for name in names:
        for bucket in buckets:
            records[(bucket, name)] = 0
    for point in points:
        name = display_value(dimension, point.value) if point.value in kept else OTHER
        amount = {"total": point.sent + point.recv, "sent": point.sent,
                  "recv": point.recv}[direction]
        records[(point.time, name)] = records.get((point.time, name), 0) + amount
    order = {display_value(dimension, v): i for i, v in enumerate(keep)}
    order[OTHER] = len(order)
    rows = sorted(records.items(), key=lambda item: (order.get(item[0][1], 0), item[0][0]))
    return pd.DataFrame({
        "time": pd.Series([_when(t, tz) for (t, _), _ in rows], dtype="datetime64[ns]"),
        "series": pd.Series([name for (_, name), _ in rows], dtype="object"),
        "bytes": pd.Series([amount for _, amount in rows], dtype="int64")})


def byte_axis(largest: float, units: UnitSystem) -> tuple[int, str]:
    """(factor, unit label) a chart's byte axis is drawn in: the data are divided by the
    factor and the axis title names the unit, in the tables' unit system (plotly's own tick
    suffixes are SI only: '15.0M' beside a table's '14.3 MiB')."""
    unit = axis_unit(largest, units)
    return unit.factor_in(units), unit.label_in(units)


def traffic_figure(frame: pd.DataFrame, bucket_s: int, title: str,
                   units: UnitSystem = UnitSystem.IEC) -> go.Figure:
    """Bytes per bucket as stacked bars, one trace per series, each bar filling its bin.

    Binned counts are bars, not lines: a line would interpolate across empty bins and draw
    traffic where there was none. Bins without traffic are zero-height bars (series_frame).
    The axes do not grow the margins to fit their labels (the template's `automargin`):
    plotly.js then measures every tick label and draws the whole chart a second time, which
    doubled the time to draw it; the scaled tick labels fit the fixed margins."""
    stacked = frame.groupby("time")["bytes"].sum().max() if not frame.empty else 0
    factor, unit = byte_axis(float(stacked), units)
    figure = go.Figure()
    for name, part in frame.groupby("series", sort=False):
        full = str(name)
        figure.add_trace(go.Bar(
            x=part["time"], y=part["bytes"] / factor, name=shorten_path(full, LEGEND_WIDTH),
            offset=0, width=bucket_s * 1000 * BAR_FILL,
            marker_color=OTHER_COLOUR if full == OTHER else None,
            customdata=[format_bytes(int(b), system=units) for b in part["bytes"]],
            hovertemplate=f"%{{customdata}}<extra>{_escape(full)}</extra>"))
    figure.update_layout(template=_template(), barmode="stack",
                         title=title, margin={"l": 66, "r": 20, "t": 50, "b": 40},
                         legend={"orientation": "h", "y": -0.15}, hovermode="x unified",
                         xaxis={"automargin": False,
                                # the hover box's heading: the bin's start, to its second
                                # when bins are shorter than a minute
                                "hoverformat": "%Y-%m-%d %H:%M:%S" if bucket_s < 60
                                else "%Y-%m-%d %H:%M"},
                         yaxis={"title": f"{unit} per {_duration(bucket_s)}",
                                "automargin": False, "exponentformat": "none",
                                "rangemode": "tozero"})
    if frame.empty:
        figure.add_annotation(text="no traffic in this range", showarrow=False,
                              xref="paper", yref="paper", x=0.5, y=0.5)
    return figure


def _escape(text: str) -> str:
    """Text for a hovertemplate, which plotly reads as HTML."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}" if count != 1 else unit
    return f"{seconds} s"


def totals_table(totals: Sequence[TrafficTotal], dimension: str, limit: int,
                 tz: tzinfo | None = None, units: UnitSystem = UnitSystem.IEC
                 ) -> list[dict[str, object]]:
    """Rows for the top-entries table; executables link to their page (`link`); a long value
    is shortened in the middle (`value`), the whole of it kept for hovering (`full`)."""
    rows = []
    for row in totals[:limit]:
        link = f"/exe?path={quote(str(row.value), safe='')}" if dimension == "exe" else ""
        full = display_value(dimension, row.value)
        rows.append({"value": shorten_path(full, TABLE_WIDTH), "full": full, "link": link,
                     "sent": format_bytes(row.sent, system=units),
                     "recv": format_bytes(row.recv, system=units),
                     "total": format_bytes(row.total, system=units),
                     "first_seen": format_time(row.first_seen, tz),
                     "last_seen": format_time(row.last_seen, tz)})
    return rows


#: Table values longer than this lose the middle of their directory (full value on hover).
TABLE_WIDTH = 64


def countries_figure(countries: Sequence[CountryTotal], top: int = 15,
                     units: UnitSystem = UnitSystem.IEC) -> go.Figure:
    """Bytes per remote country as horizontal bars, largest on top."""
    shown = list(countries[:top])[::-1]
    factor, unit = byte_axis(max((c.total for c in shown), default=0), units)
    figure = go.Figure(go.Bar(
        x=[c.total / factor for c in shown], y=[c.country for c in shown], orientation="h",
        marker_color=COLOURWAY[0],
        customdata=[[format_bytes(c.total, system=units), c.addresses] for c in shown],
        hovertemplate="%{y}: %{customdata[0]} from %{customdata[1]} addresses"
                      "<extra></extra>"))
    figure.update_layout(template=_template(), title="Remote countries (sent + received)",
                         margin={"l": 140, "r": 20, "t": 50, "b": 40},
                         xaxis={"title": unit, "exponentformat": "none"}, bargap=0.35,
                         height=max(220, 110 + 30 * len(shown)))
    return figure


def versions_figure(versions: Sequence[ExecutableVersion], tz: tzinfo | None = None) \
        -> go.Figure:
    """Hashes over time: one bar per sha256 from its first to its last traffic."""
    figure = go.Figure()
    for version in versions:
        start = version.first_traffic if version.first_traffic is not None \
            else version.first_seen
        end = version.last_traffic if version.last_traffic is not None else start
        figure.add_trace(go.Scatter(
            x=[_when(start, tz), _when(end, tz)], y=[version.sha256[:16]] * 2,
            mode="lines+markers", name=version.sha256[:16], line={"width": 8},
            hovertemplate=f"{version.sha256}<br>%{{x}}<extra></extra>"))
    figure.update_layout(template=_template(),
                         title="Hashes over time (first to last traffic)", showlegend=False,
                         margin={"l": 160, "r": 20, "t": 50, "b": 40},
                         height=max(200, 120 + 40 * len(versions)))
    return figure


#: The devices table's columns: (id in device_rows()' records, heading).
DEVICE_COLUMNS = (("mac", "MAC"), ("ip", "IP"), ("vendor", "Vendor"), ("name", "Name"),
                  ("names", "Names found"), ("device_type", "Type"),
                  ("open_ports", "Open ports"), ("services", "Services"), ("here", "Here now"),
                  ("known", "Known"), ("trusted", "Trusted"), ("random", "Random MAC"),
                  ("last_seen", "Last seen"))


def device_rows(rows: Sequence[DeviceRow], tz: tzinfo | None = None) -> list[dict[str, object]]:
    """Records for the devices DataTable: present.py's, with flags as words and times local."""
    records = []
    for row, record in zip(rows, device_table_records(rows), strict=True):
        record = dict(record, here="yes" if row.present else "no",
                      known="yes" if row.known_name else "no",
                      trusted="yes" if row.trusted else "no",
                      random="yes" if row.randomized else "no",
                      last_seen=format_time(row.last_seen, tz))
        records.append({key: record[key] for key, _ in device_columns(rows)})
    return records


def device_columns(rows: Sequence[DeviceRow] | Sequence[dict[str, object]]
                   ) -> tuple[tuple[str, str], ...]:
    """The devices table's columns: a fleet's server adds the host that saw each device."""
    fleet = any((r.get("host") if isinstance(r, dict) else r.host) for r in rows)
    return ((("host", "Host"),) if fleet else ()) + DEVICE_COLUMNS


def _local_times(segments: Sequence[dict[str, object]], key: str,
                 tz: tzinfo | None) -> pd.Series:
    return pd.Series([_when(cast(float, s[key]), tz) for s in segments],
                     dtype="datetime64[ns]")


def presence_figure(segments: Sequence[dict[str, object]], title: str,
                    tz: tzinfo | None = None,
                    span: tuple[float, float] | None = None) -> go.Figure:
    """present.presence_segments() as a timeline: one row (and one trace, named after the
    device) per device, a bar per presence window; open windows end now. ``span`` (epoch
    seconds) is the x range shown: a window that began before it is cut at its start."""
    if not segments:
        figure = go.Figure()
        figure.add_annotation(text="no device was on the LAN in this range", showarrow=False,
                              xref="paper", yref="paper", x=0.5, y=0.5)
        figure.update_layout(template=_template(), title=title, height=250)
        return figure
    frame = pd.DataFrame({
        "Task": [str(s["Task"]) for s in segments], "mac": [s["mac"] for s in segments],
        "Start": _local_times(segments, "Start", tz),
        "Finish": _local_times(segments, "Finish", tz),
        "still here": ["yes" if s["open"] else "no" for s in segments]})
    figure = px.timeline(frame, x_start="Start", x_end="Finish", y="Task", color="Task",
                         color_discrete_sequence=list(COLOURWAY),
                         hover_data={"mac": True, "still here": True, "Task": False})
    devices = frame["Task"].nunique()
    figure.update_yaxes(autorange="reversed", title=None)
    if span is not None:
        figure.update_xaxes(range=[_when(span[0], tz), _when(span[1], tz)])
    figure.update_layout(template=_template(), title=title, showlegend=False,
                         height=max(250, 110 + 36 * devices),
                         margin={"l": 160, "r": 20, "t": 50, "b": 40})
    return figure


def latency_figure(samples: Sequence[tuple[str, float, float | None]], title: str,
                   tz: tzinfo | None = None) -> go.Figure:
    """watch_queries.latency_samples() as one line per target (ms over time); a failed probe
    is a gap in its line and a cross on the time axis."""
    figure = go.Figure()
    if not samples:
        figure.add_annotation(text="no probes in this range", showarrow=False,
                              xref="paper", yref="paper", x=0.5, y=0.5)
    palette = px.colors.qualitative.Plotly
    for index, target in enumerate(sorted({name for name, _, _ in samples})):
        colour = palette[index % len(palette)]
        mine = [(t, ms) for name, t, ms in samples if name == target]
        figure.add_trace(go.Scatter(x=[_when(t, tz) for t, _ in mine], y=[ms for _, ms in mine],
                                    mode="lines", name=target, connectgaps=False,
                                    line={"color": colour}, legendgroup=target))
        failed = [_when(t, tz) for t, ms in mine if ms is None]
        if failed:
            figure.add_trace(go.Scatter(x=failed, y=[0] * len(failed), mode="markers",
                                        marker={"symbol": "x", "size": 7, "color": colour},
                                        showlegend=False, legendgroup=target,
                                        name=f"{target}: failed"))
    figure.update_layout(template=_template(), title=title, height=330,
                         yaxis_title="latency (ms)", margin={"l": 60, "r": 20, "t": 50, "b": 40})
    return figure
