"""The devices view as text: LAN devices, then the selected one's details and presence.

Pure, like render.py: `devices_lines(...) -> (lines, highlight)`, every line exactly `width`
ASCII characters. The table comes from netwarden.view.devices (as `netwarden devices`
prints it), with the flags moved to the front so they show at 80 columns; the columns that do
not fit a narrow terminal (type, ports) are in the selected device's details.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo

from netwarden.store.device_queries import DeviceRow, PresenceRow
from netwarden.view.devices import (
    COLUMNS,
    device_key,
    device_labels,
    device_table_lines,
    presence_timeline_lines,
    row_from_store,
)
from netwarden.view.labels import format_time
from netwarden.viewer_tui.state import BrowserState

HEADER_LINES = 3      # title, legend, column names
FOOTER_LINES = 1
DETAIL_LINES = 7      # the selected device: heading, 4 lines of facts, timeline caption, bar
MIN_TABLE_ROWS = 3

#: present.py draws with a few non-ASCII characters; the TUI stays ASCII (see render.py).
_ASCII = str.maketrans({"\u2026": "~", "\u2588": "#", "\u00b7": "."})

#: The table without present.py's last column (FLAGS), which this view shows first instead.
_TABLE_WIDTH = sum(width + 1 for _, width in COLUMNS[:-1]) - 1
_FLAGS_WIDTH = 4


@dataclass(frozen=True)
class DevicesData:
    """What one read of the store gave the devices view."""

    rows: Sequence[DeviceRow] = ()
    windows: Sequence[PresenceRow] = ()    # every device's windows overlapping [start, end]
    start: float = 0.0                     # the presence timeline's span
    end: float = 1.0
    problem: str = ""                      # what is wrong with the store; replaces the table


def detail_lines(height: int) -> int:
    """How many lines the selected device gets: all of DETAIL_LINES unless the terminal is
    too short to keep MIN_TABLE_ROWS of table too."""
    spare = height - HEADER_LINES - FOOTER_LINES - MIN_TABLE_ROWS
    return max(0, min(DETAIL_LINES, spare))


def device_page_size(height: int) -> int:
    return max(1, height - HEADER_LINES - FOOTER_LINES - detail_lines(height))


def _fit(text: str, width: int) -> str:
    return text.translate(_ASCII)[:width].ljust(width)


def _title(state: BrowserState, data: DevicesData | None) -> str:
    parts = ["netwarden: devices"]
    if data is not None and not data.problem:
        here = sum(1 for r in data.rows if r.present)
        parts.append(f"{len(data.rows)} recorded, {here} here now")
    label = state.presence_range.label
    parts.append("presence: all time" if label == "all" else f"presence: last {label}")
    if state.live:
        parts.append("LIVE")
    return " | ".join(parts)


def _table(rows: Sequence[DeviceRow], state: BrowserState, width: int, page: int,
           now: float) -> tuple[list[str], list[str], int | None]:
    """(header line, row lines on this page, index of the selected one among them)."""
    table_width = max(1, min(width - 2 - _FLAGS_WIDTH - 1, _TABLE_WIDTH))
    table_rows = [row_from_store(r) for r in rows]
    header, *lines = device_table_lines(table_rows, table_width, now)
    shown, highlight = [], None
    for index in range(state.device_top, min(len(rows), state.device_top + page)):
        selected = index == state.device_cursor
        if selected:
            highlight = len(shown)
        marker = "> " if selected else "  "
        shown.append(marker + table_rows[index].flags.ljust(_FLAGS_WIDTH) + " " + lines[index])
    return "  " + "FLAG".ljust(_FLAGS_WIDTH) + " " + header, shown, highlight


def _ports(ports: Sequence[int] | None) -> str:
    if ports is None:
        return "not probed"
    return ", ".join(str(p) for p in ports) or "none open"


def _status(row: DeviceRow, tz: tzinfo | None) -> str:
    parts = ["here now" if row.present else "not here now"]
    if row.known_name:
        parts.append(f'known as "{row.known_name}"' + (", trusted" if row.trusted else ""))
    elif row.trusted:
        parts.append("trusted")
    if row.randomized:
        parts.append("randomised MAC")
    parts.append(f"last seen {format_time(row.last_seen, tz)}")
    return " | ".join(parts)


def _details(row: DeviceRow, data: DevicesData, width: int, tz: tzinfo | None) -> list[str]:
    label = device_labels(data.rows)[device_key(row)]
    heading = f"-- {label} " if row.mac in label else f"-- {label} ({row.mac}) "
    names = ", ".join(f"{n['name']} ({n['method']})" for n in row.names) or "none found"
    reasons = "; ".join(row.type_reasons)
    facts = [
        heading + "-" * max(0, width - len(heading)),
        "status: " + _status(row, tz),
        f"names: {names}",
        f"type: {row.device_type or 'unknown'}" + (f" ({reasons})" if reasons else ""),
        f"open ports: {_ports(row.open_ports)} | addresses: {', '.join(row.ips) or row.ip}"
        + (f" | {row.interface}" if row.interface else ""),
        f"presence from {format_time(data.start, tz)} to {format_time(data.end, tz)} "
        f"(first seen {format_time(row.first_seen, tz)}):",
    ]
    windows = [w for w in data.windows if w.mac == row.mac]
    if windows:
        facts += presence_timeline_lines(windows, {row.mac: label}, data.start, data.end,
                                         width)
    else:
        facts.append("  not seen in this range")
    return facts


def _footer(message: str, data: DevicesData | None, loading: bool) -> str:
    if data is None or data.problem:
        count = "" if loading and data is None else "no data"
    else:
        count = "1 device" if len(data.rows) == 1 else f"{len(data.rows)} devices"
    hint = "d traffic t range M mutes ?help q quit"
    return "  ".join(p for p in (message, count, hint) if p)


NO_DEVICES = ("no LAN devices recorded yet: the discovery service (`netwarden discovery`) "
              "or `netwarden scan --record` records them here. d returns to the traffic.")


def devices_lines(state: BrowserState, data: DevicesData | None, message: str, loading: bool,
                  width: int, height: int, now: float,
                  tz: tzinfo | None = None) -> tuple[list[str], int | None]:
    """The whole devices screen, top to bottom; the highlight is the selected row's line."""
    lines = [_fit(_title(state, data), width),
             _fit("flags: * here now  K known  T trusted  R randomised MAC", width)]
    highlight = None
    body_height = height - HEADER_LINES - FOOTER_LINES
    if data is None:
        lines += ["", "  reading the store ..." if loading else ""]
    elif data.problem or not data.rows:
        lines.append("")
        lines += ["  " + line for line in
                  textwrap.wrap(data.problem or NO_DEVICES, width - 2)[:body_height]]
    else:
        page = device_page_size(height)
        header, rows, selected = _table(data.rows, state, width, page, now)
        lines.append(header)
        if selected is not None:
            highlight = len(lines) + selected
        lines += rows
        lines += [""] * (HEADER_LINES + page - len(lines))
        detail = detail_lines(height)
        if detail:
            row = data.rows[min(state.device_cursor, len(data.rows) - 1)]
            lines += _details(row, data, width, tz)[:detail]
    lines = [_fit(line, width) for line in lines[:height - FOOTER_LINES]]
    lines += [" " * width] * (height - FOOTER_LINES - len(lines))
    lines.append(_fit(_footer(message, data, loading), width))
    return lines, highlight
