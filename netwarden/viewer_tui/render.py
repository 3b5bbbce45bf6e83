"""The screen as text: `render(screen, width, height) -> lines`, golden-tested at 80x24.

Nothing here touches curses. Every line is exactly `width` characters (ASCII only, so a
terminal in the C locale shows the same); the selected row starts with '>' and is also
returned as `highlight` so curses can draw it in reverse video. The traffic view is drawn
here; the devices view, the mute list and the connectivity view by devices_view.py,
mutes_view.py and watch_view.py.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import tzinfo

from netwarden.model.baseline import BaselineSummary
from netwarden.store.traffic_queries import DIMENSIONS, TrafficTotal
from netwarden.view.baseline import baseline_badge
from netwarden.view.labels import display_value, format_time
from netwarden.view.units import format_bytes
from netwarden.viewer_tui.devices_view import (
    DevicesData,
    device_page_size,
    devices_lines,
)
from netwarden.viewer_tui.mutes_view import MuteListData, mute_page_size, mutes_lines
from netwarden.viewer_tui.watch_view import WatchData, watch_lines
from netwarden.viewer_tui.state import (
    HELP_LINES,
    BrowserState,
    Mode,
    SortKey,
    View,
    visible_rows,
)

HEADER_LINES = 3      # title, filters, column names
FOOTER_LINES = 1
WIDE = 100            # from this width on, a TOTAL column is shown too


@dataclass(frozen=True)
class Screen:
    """Everything one frame shows."""

    state: BrowserState
    rows: Sequence[TrafficTotal]
    window_text: str              # the time window, as the title shows it
    problem: str = ""             # what is wrong with the store; replaces the table
    message: str = ""             # one line for the footer (e.g. 'refreshed 10:00:02')
    loading: bool = False         # a query is running; an empty table is not yet known empty
    devices: DevicesData | None = None    # the devices view's data (None: not read yet)
    mutes: MuteListData | None = None     # the mute list view's data
    now: float = 0.0              # the clock, for "seen 5m ago"
    watch: WatchData | None = None        # the connectivity view's data
    baseline: BaselineSummary | None = None   # the baseline's mode and drift, for the title


@dataclass(frozen=True)
class Rendered:
    lines: list[str]
    highlight: int | None         # index of the selected row's line


def page_size(height: int) -> int:
    return max(1, height - HEADER_LINES - FOOTER_LINES)


def view_page_size(view: View, height: int) -> int:
    """How many rows a page of `view` holds at `height` lines (PgUp/PgDn move by it)."""
    if view is View.DEVICES:
        return device_page_size(height)
    if view is View.MUTES:
        return mute_page_size(height)
    return page_size(height)


def _fit(text: str, width: int) -> str:
    return text[:width].ljust(width)


def _shorten(text: str, width: int) -> str:
    """Keep the end of long values (a path's file name matters most)."""
    if len(text) <= width:
        return text.ljust(width)
    if width <= 2:
        return text[:width]
    return ".." + text[-(width - 2):]


def _columns(width: int) -> list[tuple[str, SortKey, int]]:
    numbers = [("SENT", SortKey.SENT, 10), ("RECV", SortKey.RECV, 10)]
    if width >= WIDE:
        numbers.append(("TOTAL", SortKey.TOTAL, 10))
    return numbers + [("FIRST SEEN", SortKey.FIRST, 11), ("LAST SEEN", SortKey.LAST, 11)]


def _label_width(width: int) -> int:
    return max(8, width - 2 - sum(w + 1 for _, _, w in _columns(width)))


def _title(screen: Screen) -> str:
    state = screen.state
    order = "v" if state.descending else "^"
    span = "all time" if state.time_range.label == "all" else \
        f"{state.time_range.label} {screen.window_text}".strip()
    if state.offset:
        span += f" (-{state.offset})"
    parts = [f"netwarden: {DIMENSIONS[state.dimension].title}", span,
             f"unit {state.unit.label_in(state.units)}", f"sort {state.sort.value} {order}"]
    if state.live:
        parts.append("LIVE")
    return " | ".join(p for p in parts if p)


def _filters_line(state: BrowserState) -> str:
    shown = [("-" if f.exclude else "+") + f"{DIMENSIONS[f.dimension].title}="
             + display_value(f.dimension, f.value) for f in state.filters]
    if state.search:
        shown.append(f"search:{state.search}")
    return "filters: " + ("  ".join(shown) if shown else "none (Enter filters, e excludes)")


def _header(state: BrowserState, width: int) -> str:
    def mark(key: SortKey) -> str:
        return ("v" if state.descending else "^") if state.sort is key else ""
    label = (DIMENSIONS[state.dimension].title.upper() + mark(SortKey.VALUE))
    cells = ["  " + label.ljust(_label_width(width))]
    cells += [(name + mark(key)).rjust(w) for name, key, w in _columns(width)]
    return " ".join(cells)


def _row_line(state: BrowserState, row: TrafficTotal, width: int, selected: bool,
              tz: tzinfo | None, user_name: Callable[[int], str] | None) -> str:
    values = {SortKey.SENT: format_bytes(row.sent, state.unit, state.units),
              SortKey.RECV: format_bytes(row.recv, state.unit, state.units),
              SortKey.TOTAL: format_bytes(row.total, state.unit, state.units),
              SortKey.FIRST: format_time(row.first_seen, tz),
              SortKey.LAST: format_time(row.last_seen, tz)}
    label = display_value(state.dimension, row.value, user_name)
    cells = [("> " if selected else "  ") + _shorten(label, _label_width(width))]
    cells += [values[key].rjust(w) for _, key, w in _columns(width)]
    return " ".join(cells)


def _footer(screen: Screen, shown: int) -> str:
    state = screen.state
    if state.mode is Mode.SEARCH:
        return f"search: {state.prompt}_   (Enter applies, Esc cancels)"
    count = ("no data" if screen.problem else "" if screen.loading
             else "1 entry" if shown == 1 else f"{shown} entries")
    hint = "Enter drill e excl t range u unit g group ?help q quit"
    return "  ".join(p for p in (screen.message, count, hint) if p)


def render(screen: Screen, width: int, height: int, tz: tzinfo | None = None,
           user_name: Callable[[int], str] | None = None) -> Rendered:
    """The whole screen, top to bottom."""
    width = max(20, width)
    height = max(HEADER_LINES + FOOTER_LINES + 1, height)
    state = screen.state
    if state.mode is Mode.HELP:
        body = list(HELP_LINES)[:height]
        return Rendered([_fit(line, width) for line in body]
                        + [" " * width] * (height - len(body)), None)
    if state.view is View.DEVICES:
        return Rendered(*devices_lines(state, screen.devices, screen.message, screen.loading,
                                       width, height, screen.now, tz))
    if state.view is View.MUTES:
        return Rendered(*mutes_lines(state, screen.mutes, screen.message, width, height))
    if state.view is View.WATCH:
        return Rendered(*watch_lines(screen.watch, screen.message, screen.loading, state.live,
                                     width, height, screen.now, tz))
    rows = visible_rows(state, screen.rows)
    # The baseline's badge leads the filters line: the title is full at 80 columns.
    badge = baseline_badge(screen.baseline, tz)
    filters = f"[{badge}] {_filters_line(state)}" if badge else _filters_line(state)
    lines = [_fit(_title(screen), width), _fit(filters, width),
             _fit(_header(state, width), width)]
    page = page_size(height)
    highlight = None
    if screen.problem:
        body = textwrap.wrap(screen.problem, width - 2)[:page]
        lines += [_fit("  " + line, width) for line in body]
    elif not rows and screen.loading:
        lines.append(_fit("  reading the store ...", width))
    elif not rows:
        lines += [_fit("  " + line, width) for line in textwrap.wrap(
            "no traffic here (t changes the range, [ steps back in time, Backspace drops "
            "a filter)", width - 2)]
    else:
        for index in range(state.top, min(len(rows), state.top + page)):
            selected = index == state.cursor
            if selected:
                highlight = len(lines)
            lines.append(_fit(_row_line(state, rows[index], width, selected, tz, user_name),
                              width))
    lines += [" " * width] * (height - FOOTER_LINES - len(lines))
    lines.append(_fit(_footer(screen, len(rows)), width))
    return Rendered(lines, highlight)
