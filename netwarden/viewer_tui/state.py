"""The browser's state and what each key does to it: pure, so every key is unit-tested.

`handle_key(state, key, rows, page, devices=, mutes=)` returns the next state and what the
program must do (nothing, read again what the view shows, quit, mute or unmute). Keys are
names: printable characters as themselves, special keys as curses names ('KEY_UP',
'KEY_NPAGE', 'KEY_BACKSPACE', ...). Three views share the state: traffic (the table of
groupings), devices (LAN devices and presence) and the notifier's mute list.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Sequence
from dataclasses import dataclass

from netwarden.store.traffic_queries import DIMENSIONS, Filter, TrafficTotal
from netwarden.view.labels import display_value
from netwarden.view.ranges import TimeRange
from netwarden.view.units import ByteUnit, UnitSystem

#: The groupings in the order `g` cycles through them.
GROUPINGS: tuple[str, ...] = tuple(DIMENSIONS)

#: Where Enter goes after filtering on a value: from a program to whom it talked, and on.
DRILL_NEXT = {"exe": "domain", "domain": "raddr", "raddr": "rport", "rport": "exe",
              "lport": "exe", "name": "exe", "sha256": "exe", "parent": "exe", "user": "exe",
              "container": "exe", "host": "exe"}


class SortKey(enum.Enum):
    VALUE = "value"
    SENT = "sent"
    RECV = "recv"
    TOTAL = "total"
    FIRST = "first"
    LAST = "last"

    def next(self) -> "SortKey":
        members = list(SortKey)
        return members[(members.index(self) + 1) % len(members)]


class Mode(enum.Enum):
    BROWSE = "browse"
    HELP = "help"
    SEARCH = "search"     # typing a search text


class View(enum.Enum):
    TRAFFIC = "traffic"   # traffic grouped by executable, domain, ...
    DEVICES = "devices"   # LAN devices, the selected one's details and presence timeline
    MUTES = "mutes"       # the notifier's mute list
    WATCH = "watch"       # the connectivity watch: targets, uptime, latency, outages


class Action(enum.Enum):
    NONE = "none"         # redraw only
    QUERY = "query"       # read again what the view shows (filters, range, view changed)
    QUIT = "quit"
    MUTE = "mute"         # mute (or, if muted, unmute) the selected program for the notifier
    UNMUTE = "unmute"     # remove the selected entry of the mute list


#: The presence timeline's ranges, cycled by t / T in the devices view.
PRESENCE_RANGES: tuple[TimeRange, ...] = (TimeRange.HOUR, TimeRange.DAY, TimeRange.WEEK,
                                          TimeRange.MONTH, TimeRange.ALL)


@dataclass(frozen=True)
class BrowserState:
    dimension: str = "exe"
    filters: tuple[Filter, ...] = ()
    time_range: TimeRange = TimeRange.HOUR
    offset: int = 0               # how many range lengths back in history
    unit: ByteUnit = ByteUnit.AUTO
    units: UnitSystem = UnitSystem.IEC   # [view] units: the same system as the web page
    sort: SortKey = SortKey.TOTAL
    descending: bool = True
    cursor: int = 0               # index into the visible rows
    top: int = 0                  # first visible row on screen
    search: str = ""
    live: bool = False
    mode: Mode = Mode.BROWSE
    prompt: str = ""              # search text being typed
    view: View = View.TRAFFIC
    device_cursor: int = 0        # index into the devices (in the store's order)
    device_top: int = 0
    presence_range: TimeRange = TimeRange.DAY
    mute_cursor: int = 0          # index into the mute list's entries


def _sort_value(row: TrafficTotal, key: SortKey) -> object:
    if key is SortKey.VALUE:
        return (0, row.value) if isinstance(row.value, int) else (1, str(row.value))
    return {SortKey.SENT: row.sent, SortKey.RECV: row.recv, SortKey.TOTAL: row.total,
            SortKey.FIRST: row.first_seen, SortKey.LAST: row.last_seen}[key]


def visible_rows(state: BrowserState, rows: Sequence[TrafficTotal]) -> list[TrafficTotal]:
    """The rows shown: those matching the search, in the chosen order."""
    needle = state.search.lower()
    kept = [r for r in rows
            if not needle or needle in display_value(state.dimension, r.value).lower()]
    return sorted(kept, key=lambda r: _sort_value(r, state.sort), reverse=state.descending)


def _clamped(cursor: int, count: int) -> int:
    return max(0, min(cursor, count - 1)) if count else 0


def _scrolled(cursor: int, top: int, count: int, page: int) -> tuple[int, int]:
    """(cursor, top) with the cursor inside [0, count) and on the page starting at top."""
    cursor = _clamped(cursor, count)
    page = max(1, page)
    if cursor < top:
        top = cursor
    elif cursor >= top + page:
        top = cursor - page + 1
    return cursor, max(0, min(top, max(0, count - page)))


def _move(state: BrowserState, cursor: int, count: int, page: int) -> BrowserState:
    cursor, top = _scrolled(cursor, state.top, count, page)
    return dataclasses.replace(state, cursor=cursor, top=top)


def _drill(state: BrowserState, row: TrafficTotal, exclude: bool) -> BrowserState:
    new_filter = Filter(state.dimension, str(row.value), exclude)
    filters = state.filters + (new_filter,)
    dimension = state.dimension
    if not exclude:
        included = {f.dimension for f in filters if not f.exclude}
        dimension = DRILL_NEXT[state.dimension]
        for _ in GROUPINGS:  # skip groupings already pinned to one value
            if dimension not in included:
                break
            dimension = DRILL_NEXT[dimension]
    return dataclasses.replace(state, filters=filters, dimension=dimension, cursor=0, top=0,
                               search="" if not exclude else state.search)


def _search_key(state: BrowserState, key: str) -> tuple[BrowserState, Action]:
    if key in ("\n", "KEY_ENTER"):
        return dataclasses.replace(state, mode=Mode.BROWSE, search=state.prompt.strip(),
                                   cursor=0, top=0), Action.NONE
    if key == "\x1b":
        return dataclasses.replace(state, mode=Mode.BROWSE, prompt=""), Action.NONE
    if key == "KEY_BACKSPACE":
        return dataclasses.replace(state, prompt=state.prompt[:-1]), Action.NONE
    if len(key) == 1 and key.isprintable():
        return dataclasses.replace(state, prompt=state.prompt + key), Action.NONE
    return state, Action.NONE


def _target(key: str, cursor: int, count: int, page: int) -> int | None:
    """Where a movement key takes a cursor; None for any other key."""
    targets = {"KEY_UP": cursor - 1, "KEY_DOWN": cursor + 1,
               "KEY_PPAGE": cursor - page, "KEY_NPAGE": cursor + page,
               "KEY_HOME": 0, "KEY_END": count - 1}
    return targets.get(key)


def _navigation(state: BrowserState, key: str, count: int, page: int) -> BrowserState | None:
    target = _target(key, state.cursor, count, page)
    return None if target is None else _move(state, target, count, page)


def _switch(state: BrowserState, view: View) -> tuple[BrowserState, Action]:
    """Another view; what it shows is read again (the last read may be of the other view)."""
    return dataclasses.replace(state, view=view), Action.QUERY


#: Keys every view shares.
_COMMON = {"q": Action.QUIT, "r": Action.QUERY}
_BACK = ("\x1b", "KEY_BACKSPACE")


def _devices_key(state: BrowserState, key: str, count: int,
                 page: int) -> tuple[BrowserState, Action]:
    replace = dataclasses.replace
    target = _target(key, state.device_cursor, count, page)
    if target is not None:
        cursor, top = _scrolled(target, state.device_top, count, page)
        return replace(state, device_cursor=cursor, device_top=top), Action.NONE
    if key in ("t", "T"):
        index = PRESENCE_RANGES.index(state.presence_range) \
            if state.presence_range in PRESENCE_RANGES else 0
        step = 1 if key == "t" else -1
        chosen = PRESENCE_RANGES[(index + step) % len(PRESENCE_RANGES)]
        return replace(state, presence_range=chosen), Action.QUERY
    if key in ("d", *_BACK):
        return _switch(state, View.TRAFFIC)
    return _shared_key(state, key)


def _mutes_key(state: BrowserState, key: str, count: int,
               page: int) -> tuple[BrowserState, Action]:
    target = _target(key, state.mute_cursor, count, page)
    if target is not None:   # the list scrolls to its cursor when drawn (mutes_view.py)
        return dataclasses.replace(state, mute_cursor=_clamped(target, count)), Action.NONE
    if key in ("m", "KEY_DC", "\n", "KEY_ENTER"):
        return state, (Action.UNMUTE if count else Action.NONE)
    if key in ("M", *_BACK):
        return _switch(state, View.TRAFFIC)
    if key == "d":
        return _switch(state, View.DEVICES)
    return _shared_key(state, key)


def _watch_key(state: BrowserState, key: str) -> tuple[BrowserState, Action]:
    if key in ("w", *_BACK):
        return _switch(state, View.TRAFFIC)
    if key == "d":
        return _switch(state, View.DEVICES)
    return _shared_key(state, key)


def _shared_key(state: BrowserState, key: str) -> tuple[BrowserState, Action]:
    if key in _COMMON:
        return state, _COMMON[key]
    if key == "?":
        return dataclasses.replace(state, mode=Mode.HELP), Action.NONE
    if key == "l":
        return dataclasses.replace(state, live=not state.live), Action.NONE
    if key == "M":
        return _switch(state, View.MUTES)
    return state, Action.NONE


def handle_key(state: BrowserState, key: str, rows: Sequence[TrafficTotal],
               page: int, devices: int = 0, mutes: int = 0) -> tuple[BrowserState, Action]:
    """The next state after `key`, given the traffic rows, how many rows fit a page of the
    current view, and how many devices and mute entries there are."""
    if state.mode is Mode.HELP:
        return dataclasses.replace(state, mode=Mode.BROWSE), Action.NONE
    if state.mode is Mode.SEARCH:
        return _search_key(state, key)
    if state.view is View.DEVICES:
        return _devices_key(state, key, devices, page)
    if state.view is View.MUTES:
        return _mutes_key(state, key, mutes, page)
    if state.view is View.WATCH:
        return _watch_key(state, key)
    shown = visible_rows(state, rows)
    moved = _navigation(state, key, len(shown), page)
    if moved is not None:
        return moved, Action.NONE
    replace = dataclasses.replace
    if key in ("\n", " ", "KEY_ENTER", "e"):
        if not shown:
            return state, Action.NONE
        return _drill(state, shown[min(state.cursor, len(shown) - 1)], key == "e"), Action.QUERY
    if key == "KEY_BACKSPACE":
        if state.search:
            return replace(state, search="", cursor=0, top=0), Action.NONE
        if not state.filters:
            return state, Action.NONE
        last = state.filters[-1]
        return replace(state, filters=state.filters[:-1], dimension=last.dimension,
                       cursor=0, top=0), Action.QUERY
    simple: dict[str, tuple[BrowserState, Action]] = {
        "q": (state, Action.QUIT),
        "?": (replace(state, mode=Mode.HELP), Action.NONE),
        "/": (replace(state, mode=Mode.SEARCH, prompt=state.search), Action.NONE),
        "r": (state, Action.QUERY),
        "l": (replace(state, live=not state.live), Action.NONE),
        "u": (replace(state, unit=state.unit.next()), Action.NONE),
        "s": (replace(state, sort=state.sort.next(), cursor=0, top=0), Action.NONE),
        "S": (replace(state, descending=not state.descending, cursor=0, top=0), Action.NONE),
        "t": (replace(state, time_range=state.time_range.next(), offset=0, cursor=0, top=0),
              Action.QUERY),
        "T": (replace(state, time_range=state.time_range.next(-1), offset=0, cursor=0, top=0),
              Action.QUERY),
        "[": (replace(state, offset=state.offset + 1, cursor=0, top=0), Action.QUERY),
        "]": (replace(state, offset=max(0, state.offset - 1), cursor=0, top=0), Action.QUERY),
        "g": (replace(state, dimension=_cycle(state.dimension, 1), cursor=0, top=0),
              Action.QUERY),
        "G": (replace(state, dimension=_cycle(state.dimension, -1), cursor=0, top=0),
              Action.QUERY),
        "d": _switch(state, View.DEVICES),
        "M": _switch(state, View.MUTES),
        "w": _switch(state, View.WATCH),
        "m": (state, Action.MUTE),
    }
    if key in ("[", "]") and state.time_range is TimeRange.ALL:
        return state, Action.NONE   # 'all' has no history to step through
    return simple.get(key, (state, Action.NONE))


def _cycle(dimension: str, step: int) -> str:
    return GROUPINGS[(GROUPINGS.index(dimension) + step) % len(GROUPINGS)]


def mute_target(state: BrowserState, rows: Sequence[TrafficTotal]) -> str | None:
    """What `m` mutes: the selected executable's path (or program name, grouped by name);
    grouped otherwise, the one executable (or name) the view is filtered on; else None."""
    shown = visible_rows(state, rows)
    if state.dimension in ("exe", "name"):
        if not shown:
            return None
        value = shown[min(state.cursor, len(shown) - 1)].value
        return str(value) if value else None
    for dimension in ("exe", "name"):
        pinned = {f.value for f in state.filters if f.dimension == dimension and not f.exclude}
        if len(pinned) == 1 and "" not in pinned:
            return pinned.pop()
    return None


#: What `?` shows.
HELP_LINES: tuple[str, ...] = (
    "netwarden tui - keys",
    "",
    "  Up/Down PgUp/PgDn Home/End   move",
    "  Enter, Space    filter on the selected entry and drill into the next grouping",
    "  e               exclude the selected entry",
    "  Backspace       remove the last filter (or the search)",
    "  g / G           next / previous grouping",
    "  t / T           next / previous time range (minute hour day week month all)",
    "  [ / ]           step back / forward through history by one range",
    "  u               byte unit: B, K, M, G, auto ([view] units: iec or si)",
    "  s / S           sort column / reverse the order",
    "  /               search the shown entries (Enter applies, Esc cancels)",
    "  r               refresh now",
    "  l               live mode: refresh on its own",
    "  m               mute the selected program's notifications (m again unmutes)",
    "  M               the mute list (m or Delete unmutes the selected entry)",
    "  d               LAN devices and presence (t / T: timeline range; d: back)",
    "  w               connectivity: watched targets, uptime, latency, outages (w: back)",
    "  ?               this help (any key closes it)",
    "  q               quit",
)
