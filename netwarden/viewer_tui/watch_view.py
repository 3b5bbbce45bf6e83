"""The connectivity view as text: each watched target and group (state, since, uptime over a
day and a week, latency), then the last week's outages.

Pure, like render.py: `watch_lines(...) -> (lines, None)`, every line exactly `width` ASCII
characters. The rows come from netwarden.view.watch, as the web viewer's page shows them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import tzinfo

from netwarden.store.watch_queries import Outage, TargetStatus
from netwarden.view.watch import (
    NO_TARGETS,
    OUTAGE_HEADER,
    STATUS_HEADER,
    outage_rows,
    status_rows,
)

FOOTER_LINES = 1
#: The targets table's columns (STATUS_HEADER's but the group: members are listed, indented,
#: under their group) and widths (the probe takes what is left: from 80 columns on); the
#: outages table's widths (OUTAGE_HEADER's; the reason takes what is left).
_STATUS_COLUMNS = tuple(i for i, name in enumerate(STATUS_HEADER) if name != "group")
_STATUS_WIDTHS = (18, 7, 11, 8, 8, 9, 9)
_OUTAGE_WIDTHS = (18, 11, 11, 13)


@dataclass(frozen=True)
class WatchData:
    """What one read of the store gave the connectivity view."""

    rows: Sequence[TargetStatus] = ()
    outages: Sequence[Outage] = ()         # the last week's, newest first
    problem: str = ""                      # what is wrong with the store; replaces the tables


def _fit(text: str, width: int) -> str:
    return text.encode("ascii", "replace").decode()[:width].ljust(width)


def _columns(cells: Sequence[str], widths: Sequence[int], width: int) -> str:
    """Cells padded to their widths; the last one gets the rest of the line, if that is
    enough to read (10 characters)."""
    line = "  " + " ".join(cell[:w].ljust(w) for cell, w in zip(cells, widths)) + " "
    return _fit(line + cells[len(widths)] if width - len(line) >= 10 else line, width)


def _target_rows(rows: Sequence[TargetStatus], tz: tzinfo | None) -> list[list[str]]:
    """Each group followed by its members (indented), then the targets on their own."""
    cells = dict(zip([r.name for r in rows], status_rows(rows, tz)))
    ordered = []
    for group in (r for r in rows if r.is_group):
        ordered.append(cells[group.name])
        ordered += [["  " + cells[m.name][0], *cells[m.name][1:]] for m in rows
                    if m.group == group.name and not m.is_group]
    ordered += [cells[r.name] for r in rows if not r.is_group and not r.group]
    return [[row[i] for i in _STATUS_COLUMNS] for row in ordered]


def _title(data: WatchData | None, live: bool) -> str:
    parts = ["netwarden: connectivity"]
    if data is not None and not data.problem:
        down = sum(1 for r in data.rows if r.state == "down")
        parts.append(f"{len(data.rows)} targets and groups, {down} down")
    if live:
        parts.append("LIVE")
    return " | ".join(parts)


def watch_lines(data: WatchData | None, message: str, loading: bool, live: bool, width: int,
                height: int, now: float, tz: tzinfo | None = None) -> tuple[list[str], None]:
    """The whole connectivity screen, top to bottom (nothing is selectable)."""
    lines = [_title(data, live), ""]
    if data is None:
        lines.append("  reading the store ..." if loading else "")
    elif data.problem or not data.rows:
        lines += ["  " + line for line in textwrap.wrap(data.problem or NO_TARGETS, width - 2)]
    else:
        lines.append(_columns([STATUS_HEADER[i] for i in _STATUS_COLUMNS], _STATUS_WIDTHS,
                              width))
        lines += [_columns(row, _STATUS_WIDTHS, width) for row in _target_rows(data.rows, tz)]
        lines += ["", f"outages, last week: {len(data.outages) or 'none'}"]
        if data.outages:
            lines.append(_columns(OUTAGE_HEADER, _OUTAGE_WIDTHS, width))
            lines += [_columns(row, _OUTAGE_WIDTHS, width)
                      for row in outage_rows(data.outages, now, tz)]
    body = height - FOOTER_LINES
    if len(lines) > body:     # the oldest outages give way first
        lines = lines[:body - 1] + ["  ... (`netwarden watch outages` lists them all)"]
    lines = [_fit(line, width) for line in lines]
    lines += [" " * width] * (body - len(lines))
    hint = "w traffic d devices r refresh l live ?help q quit"
    lines.append(_fit("  ".join(p for p in (message, hint) if p), width))
    return lines, None
