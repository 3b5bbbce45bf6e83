"""`netwarden report`'s shaping: the period's window, a report model built from query rows, and
its Markdown and HTML renderings. Pure: the command (netwarden/reports/) does the reading.

Outages are not recorded in a store without the connectivity watch's tables (or on a fleet's
server, which the watch does not ship to), nor LAN devices without discovery's: the report
says so instead of printing a zero that would read as "none happened".
"""

from __future__ import annotations

import html
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import NamedTuple

from netwarden.store.event_queries import EventRow
from netwarden.store.export_queries import HealthRow
from netwarden.store.traffic_queries import TrafficTotal
from netwarden.store.watch_queries import OutageSummary
from netwarden.view.units import format_bytes
from netwarden.view.watch import duration

#: Each period's length. A month is 30 days: a fixed span, so two reports compare.
PERIODS: dict[str, int] = {"day": 86400, "week": 7 * 86400, "month": 30 * 86400}

#: What the report says of what this version does not record (issue 23, points 1 and 3).


class ReportInputError(ValueError):
    """A bad --period or --until; the message names the flag."""


def period_seconds(period: str) -> int:
    try:
        return PERIODS[period]
    except KeyError:
        raise ReportInputError(f"--period wants one of {', '.join(PERIODS)}, got {period!r}") \
            from None


def parse_until(text: str | None, now: float, tz: tzinfo | None = None) -> float:
    """--until as epoch seconds: a number, or an ISO 8601 time (without an offset: in ``tz``,
    the local zone by default); None is ``now``."""
    if text is None:
        return now
    try:
        value = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ReportInputError(f"--until wants epoch seconds or an ISO 8601 time, "
                                   f"got {text!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=tz) if tz else moment.astimezone()
        value = moment.timestamp()
    if value != value or value < 0:    # NaN or before 1970
        raise ReportInputError(f"--until must be a time after 1970, got {text!r}")
    return value


class Line(NamedTuple):
    """A labelled amount of traffic: a program, a destination, a host."""

    label: str
    sent: int
    recv: int

    @property
    def total(self) -> int:
        return self.sent + self.recv


class Happening(NamedTuple):
    """An event as the report lists it: when, where, what (a path, a MAC) and its details."""

    time: float
    host: str
    subject: str
    detail: str


class Tally(NamedTuple):
    """A count by a two-part key: sensor errors by component and state, health counters by
    source and counter."""

    first: str
    second: str
    count: int


@dataclass(frozen=True)
class Report:
    period: str
    since: float
    until: float
    source: str                              # the store's path or the server's redacted URL
    sent: int
    recv: int
    programs: tuple[Line, ...]
    destinations: tuple[Line, ...]
    new_programs: tuple[Happening, ...]
    modified: tuple[Happening, ...]
    new_devices: tuple[Happening, ...] | None    # None: the store has no discovery tables
    sensor_errors: tuple[Tally, ...]
    health: tuple[Tally, ...]
    hosts: tuple[Line, ...] | None = None        # per host, from a fleet's server only
    outages: tuple[OutageSummary, ...] | None = None   # None: no watch tables to read
    scans: tuple[Happening, ...] = ()            # inbound port scans (port_scan events)



def top_lines(totals: Iterable[TrafficTotal], top: int, empty: str = "(unknown)") -> list[Line]:
    return [Line(str(t.value) if t.value not in (None, "") else empty, int(t.sent), int(t.recv))
            for t in list(totals)[:top]]


def destinations(by_domain: Iterable[TrafficTotal], unnamed_by_address: Iterable[TrafficTotal],
                 top: int) -> list[Line]:
    """Top destinations: a domain where one is known, else the address (the traffic with no
    domain, grouped by address), largest total first."""
    named = [t for t in by_domain if t.value not in (None, "")]
    lines = top_lines(named, len(named)) + top_lines(unnamed_by_address, top, "(none)")
    return sorted(lines, key=lambda line: (-line.total, line.label))[:top]


def _field(event: EventRow, name: str) -> str:
    value = event.fields.get(name)
    return "" if value is None else str(value)


def new_programs(events: Iterable[EventRow]) -> list[Happening]:
    return _oldest_first(Happening(e.time, e.host, _field(e, "path"),
                                   f"{_field(e, 'name')}, uid {_field(e, 'uid')}, "
                                   f"sha256 {_field(e, 'sha256')[:12]}") for e in events)


def modified_executables(events: Iterable[EventRow]) -> list[Happening]:
    return _oldest_first(Happening(e.time, e.host, _field(e, "path"),
                                   f"sha256 {_field(e, 'old_sha256')[:12]} -> "
                                   f"{_field(e, 'new_sha256')[:12]}") for e in events)


def new_devices(events: Iterable[EventRow]) -> list[Happening]:
    def detail(e: EventRow) -> str:
        parts = [_field(e, "ip"), _field(e, "vendor") or "unknown vendor", _field(e, "name")]
        return ", ".join(p for p in parts if p)
    return _oldest_first(Happening(e.time, e.host, _field(e, "mac"), detail(e)) for e in events)


def port_scans(events: Iterable[EventRow]) -> list[Happening]:
    """One line per scan: a long scan's several port_scan events (report 1, 2, ...) share its
    source and first probe, and its latest report holds the totals so far."""
    latest: dict[tuple[str, str, str], EventRow] = {}
    for e in events:
        key = (e.host, _field(e, "source"), _field(e, "first"))
        held = latest.get(key)
        if held is None or _number(held, "report") < _number(e, "report"):
            latest[key] = e

    def detail(e: EventRow) -> str:
        ports, probe = _field(e, "ports") or "?", _field(e, "probe") or "?"
        state = "going on" if _field(e, "state") == "ongoing" else "ended"
        return f"{ports} ports, {probe}, over {duration(_number(e, 'duration_s'))}, {state}"
    return _oldest_first(Happening(_number(e, "first") or e.time, e.host, _field(e, "source"),
                                   detail(e)) for e in latest.values())


def _number(event: EventRow, name: str) -> float:
    value = event.fields.get(name)
    return float(value) if isinstance(value, (int, float)) else 0.0


def _oldest_first(items: Iterable[Happening]) -> list[Happening]:
    return sorted(items, key=lambda h: (h.time, h.subject))


def sensor_error_tally(events: Iterable[EventRow]) -> list[Tally]:
    """sensor_error events counted by component and state (e.g. sensor / unclean_stop)."""
    counts = Counter((_field(e, "component") or "?", _field(e, "state") or "?") for e in events)
    return [Tally(c, s, n) for (c, s), n in sorted(counts.items())]


def health_tally(rows: Iterable[HealthRow], until: float) -> list[Tally]:
    """The health counters' moves before ``until`` (the query reads from a start time), summed
    per source and counter; counters that did not move are left out."""
    sums: Counter[tuple[str, str]] = Counter()
    for row in rows:
        if row.time < until:
            sums[(row.source, row.counter)] += int(row.delta)
    return [Tally(s, c, n) for (s, c), n in sorted(sums.items()) if n]


# ---- rendering ----

def _when(epoch: float, tz: tzinfo | None) -> str:
    return datetime.fromtimestamp(epoch, tz).astimezone(tz).strftime("%Y-%m-%d %H:%M %Z")


Section = tuple[str, list[str], list[list[str]], str]


def _sections(report: Report, tz: tzinfo | None) -> list[Section]:
    """Each section as (title, table header, rows, text when there are no rows): what both
    renderings print, so Markdown and HTML cannot disagree."""
    def traffic(lines: Sequence[Line]) -> list[list[str]]:
        return [[line.label, format_bytes(line.sent), format_bytes(line.recv),
                 format_bytes(line.total)] for line in lines]

    def happened(items: Sequence[Happening]) -> list[list[str]]:
        hosted = report.hosts is not None
        return [[_when(h.time, tz), *([h.host] if hosted else []), h.subject, h.detail]
                for h in items]

    host = ["host"] if report.hosts is not None else []
    byte_cols = ["sent", "received", "total"]
    sections = [
        ("Top programs", ["program", *byte_cols], traffic(report.programs), "no traffic"),
        ("Top destinations", ["destination", *byte_cols], traffic(report.destinations),
         "no traffic"),
        ("New programs", ["first seen", *host, "program", "detail"],
         happened(report.new_programs), "none"),
        ("Modified executables", ["time", *host, "path", "hash"],
         happened(report.modified), "none"),
    ]
    if report.new_devices is None:
        sections.append(("New LAN devices", [], [], "not recorded: this store has no LAN "
                         "discovery tables"))
    else:
        sections.append(("New LAN devices", ["first seen", *host, "MAC", "detail"],
                         happened(report.new_devices), "none"))
    sections += [
        ("Sensor errors", ["component", "state", "events"],
         [[t.first, t.second, str(t.count)] for t in report.sensor_errors], "none"),
        ("Health counters", ["source", "counter", "total"],
         [[t.first, t.second, str(t.count)] for t in report.health], "no counter moved"),
        ("Scans seen", ["first probe", *host, "source", "detail"], happened(report.scans),
         "none"),
    ]
    if report.outages is None:
        sections.append(("Outages", [], [], "not recorded: this store has no connectivity "
                         "watch tables (a fleet's server has none either)"))
    else:
        sections.append(("Outages", ["target", "probe", "outages", "downtime", "longest"],
                         [[o.name + (" (group)" if o.is_group else ""), o.probe,
                           str(o.count), duration(o.total_s), duration(o.longest_s)]
                          for o in report.outages], "none"))
    if report.hosts is not None:
        sections.insert(0, ("Hosts", ["host", *byte_cols], traffic(report.hosts),
                            "no traffic"))
    return sections


def summary_lines(report: Report, tz: tzinfo | None) -> list[str]:
    return [f"Period: {report.period}, {_when(report.since, tz)} to {_when(report.until, tz)}",
            f"Source: {report.source}",
            f"Sent {format_bytes(report.sent)}, received {format_bytes(report.recv)}, "
            f"total {format_bytes(report.sent + report.recv)}"]


def _title(report: Report) -> str:
    return f"netwarden report: {report.period}"


def _md_cell(text: str) -> str:
    # A pipe would end the cell and a newline the row; `<` would start raw HTML in a
    # renderer, `*` and a backtick emphasis or code: each is escaped with a backslash.
    text = text.replace("\\", "\\\\").replace("\n", " ")
    for mark in "|<*`":
        text = text.replace(mark, "\\" + mark)
    return text


def render_markdown(report: Report, tz: tzinfo | None = None) -> str:
    out = [f"# {_title(report)}", ""]
    out += [f"- {_md_cell(line)}" for line in summary_lines(report, tz)]
    for title, header, rows, empty in _sections(report, tz):
        out += ["", f"## {title}", ""]
        if not rows:
            out.append(f"_{empty}_")
            continue
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "|".join("---" for _ in header) + "|")
        out += ["| " + " | ".join(_md_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(out) + "\n"


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%}th,td{padding:.25em .6em;text-align:left;
vertical-align:top;border-bottom:1px solid #eee}th{background:#f4f4f4}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}.empty{color:#777;font-style:italic}
ul.summary{list-style:none;padding:0}code{word-break:break-all}
""".strip()

_NUMERIC_HEADERS = frozenset({"sent", "received", "total", "events", "outages", "downtime",
                              "longest"})


def render_html(report: Report, tz: tzinfo | None = None) -> str:
    """A self-contained page: inline CSS, no scripts, no external assets, every text escaped."""
    esc = html.escape
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{esc(_title(report))}</title>", f"<style>{_CSS}</style>", "</head>",
           "<body>", f"<h1>{esc(_title(report))}</h1>", '<ul class="summary">']
    out += [f"<li>{esc(line)}</li>" for line in summary_lines(report, tz)]
    out.append("</ul>")
    for title, header, rows, empty in _sections(report, tz):
        out.append(f"<h2>{esc(title)}</h2>")
        if not rows:
            out.append(f'<p class="empty">{esc(empty)}</p>')
            continue
        numeric = [name in _NUMERIC_HEADERS for name in header]
        out.append("<table><thead><tr>" + "".join(
            f'<th class="n">{esc(h)}</th>' if num else f"<th>{esc(h)}</th>"
            for h, num in zip(header, numeric, strict=True)) + "</tr></thead><tbody>")
        for row in rows:
            out.append("<tr>" + "".join(
                f'<td class="n">{esc(cell)}</td>' if num else f"<td>{esc(cell)}</td>"
                for cell, num in zip(row, numeric, strict=True)) + "</tr>")
        out.append("</tbody></table>")
    out += ["</body>", "</html>"]
    return "\n".join(out) + "\n"

