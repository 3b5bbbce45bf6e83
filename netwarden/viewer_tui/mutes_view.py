"""The notifier's mute list in the TUI: its entries, and the view as text (pure).

The list itself is the user's mutes file (netwarden.mutes), which `netwarden mute`
and the notifier share; app.py reads and edits it, this module only shapes it.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from netwarden.model.kinds import MUTABLE_KINDS
from netwarden.mutes import Mutes
from netwarden.viewer_tui.state import BrowserState

HEADER_LINES = 3      # title, explanation, column names
FOOTER_LINES = 1


@dataclass(frozen=True)
class MuteEntry:
    """One line of the list: a muted program (path or name) or a muted event kind."""

    what: str      # "program" or "kind"
    value: str


@dataclass(frozen=True)
class MuteListData:
    path: str                          # the mutes file shown
    entries: tuple[MuteEntry, ...] = ()
    problem: str = ""                  # the file cannot be read: why


def mute_entries(mutes: Mutes) -> tuple[MuteEntry, ...]:
    """Programs first, then kinds, each sorted."""
    return tuple([MuteEntry("program", p) for p in sorted(mutes.programs)]
                 + [MuteEntry("kind", k) for k in sorted(mutes.kinds)])


def mute_page_size(height: int) -> int:
    return max(1, height - HEADER_LINES - FOOTER_LINES)


def _fit(text: str, width: int) -> str:
    return text[:width].ljust(width)


def _keep_end(text: str, width: int) -> str:
    """A long path keeps its end (the file name) and loses its start."""
    return text if len(text) <= width else ".." + text[-max(0, width - 2):]


def _entry_line(entry: MuteEntry, selected: bool) -> str:
    text = entry.value
    if entry.what == "kind" and entry.value in MUTABLE_KINDS:
        text += f" ({MUTABLE_KINDS[entry.value]})"
    return ("> " if selected else "  ") + entry.what.ljust(8) + " " + text


EMPTY = ("nothing is muted. In the traffic view m mutes the selected program; from a shell, "
         "`netwarden mute PROGRAM` or `netwarden mute --kind KIND`.")


def mutes_lines(state: BrowserState, data: MuteListData | None, message: str, width: int,
                height: int) -> tuple[list[str], int | None]:
    """The mute list, top to bottom; the highlight is the selected entry's line."""
    lines = ["netwarden: notifier mutes | m or Delete unmutes the selected one, M: back",
             "file: " + _keep_end(data.path if data else "", width - 6),
             "  " + "WHAT".ljust(8) + " ENTRY"]
    highlight = None
    page = mute_page_size(height)
    entries: Sequence[MuteEntry] = data.entries if data else ()
    if data is not None and (data.problem or not entries):
        lines += ["  " + line for line in textwrap.wrap(data.problem or EMPTY, width - 2)]
    else:
        cursor = min(state.mute_cursor, max(0, len(entries) - 1))
        top = max(0, cursor - page + 1)
        for index in range(top, min(len(entries), top + page)):
            if index == cursor:
                highlight = len(lines)
            lines.append(_entry_line(entries[index], index == cursor))
    lines = [_fit(line, width) for line in lines[:height - FOOTER_LINES]]
    lines += [" " * width] * (height - FOOTER_LINES - len(lines))
    count = "no data" if data is None or data.problem else (
        "1 entry" if len(entries) == 1 else f"{len(entries)} entries")
    footer = "  ".join(p for p in (message, count, "m unmute M back d devices ?help q quit")
                       if p)
    lines.append(_fit(footer, width))
    return lines, highlight
