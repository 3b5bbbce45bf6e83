from __future__ import annotations

from netwarden.store.traffic_queries import Filter, TrafficTotal
from netwarden.view.ranges import TimeRange
from netwarden.view.units import ByteUnit
from netwarden.viewer_tui.state import (
    Action,
    BrowserState,
    Mode,
    SortKey,
    handle_key,
    visible_rows,
)

ROWS = [TrafficTotal("/usr/bin/curl", 10, 500, 100, 200),
        TrafficTotal("/usr/lib/firefox/firefox", 900, 9000, 50, 300),
        TrafficTotal("/usr/sbin/sshd", 4000, 10, 10, 150)]


def press(state: BrowserState, *keys: str, rows=ROWS, page: int = 2):
    action = Action.NONE
    for key in keys:
        state, action = handle_key(state, key, rows, page)
    return state, action


def test_rows_are_sorted_by_total_largest_first():
    assert [r.value for r in visible_rows(BrowserState(), ROWS)] == [
        "/usr/lib/firefox/firefox", "/usr/sbin/sshd", "/usr/bin/curl"]


def test_sort_cycles_columns_and_reverses():
    state, action = press(BrowserState(), "s")
    assert state.sort is SortKey.FIRST and action is Action.NONE
    assert [r.value for r in visible_rows(state, ROWS)][0] == "/usr/bin/curl"
    state, _ = press(state, "S")
    assert [r.first_seen for r in visible_rows(state, ROWS)] == [10, 50, 100]


def test_cursor_moves_and_the_page_scrolls():
    state, _ = press(BrowserState(), "KEY_DOWN", "KEY_DOWN", "KEY_DOWN")
    assert (state.cursor, state.top) == (2, 1)
    state, _ = press(state, "KEY_HOME")
    assert (state.cursor, state.top) == (0, 0)
    state, _ = press(state, "KEY_END")
    assert state.cursor == 2
    state, _ = press(state, "KEY_PPAGE")
    assert state.cursor == 0
    state, _ = press(state, "KEY_NPAGE")
    assert state.cursor == 2


def test_enter_filters_and_drills_into_the_next_grouping():
    state, action = press(BrowserState(), "KEY_DOWN", "\n")
    assert action is Action.QUERY
    assert state.filters == (Filter("exe", "/usr/sbin/sshd"),)
    assert state.dimension == "domain" and state.cursor == 0
    domains = [TrafficTotal("", 1, 1, 1, 1)]
    state, _ = press(state, " ", rows=domains)
    assert state.filters[-1] == Filter("domain", "")
    assert state.dimension == "raddr"


def test_drilling_skips_groupings_already_pinned():
    state = BrowserState(dimension="rport", filters=(Filter("exe", "/x"),))
    state, _ = press(state, "\n", rows=[TrafficTotal(443, 1, 1, 1, 1)])
    assert state.dimension == "domain"   # exe is pinned already


def test_e_excludes_and_stays_on_the_grouping():
    state, action = press(BrowserState(), "e")
    assert action is Action.QUERY
    assert state.filters == (Filter("exe", "/usr/lib/firefox/firefox", exclude=True),)
    assert state.dimension == "exe"


def test_backspace_removes_the_last_filter_and_returns_to_its_grouping():
    state, _ = press(BrowserState(), "\n")
    state, action = press(state, "KEY_BACKSPACE")
    assert (state.filters, state.dimension, action) == ((), "exe", Action.QUERY)
    assert press(state, "KEY_BACKSPACE")[1] is Action.NONE


def test_time_range_units_and_history():
    state, action = press(BrowserState(), "t")
    assert state.time_range is TimeRange.DAY and action is Action.QUERY
    state, _ = press(state, "[", "[", "]")
    assert state.offset == 1
    state, _ = press(state, "t")
    assert state.offset == 0 and state.time_range is TimeRange.WEEK
    state, _ = press(BrowserState(time_range=TimeRange.ALL), "[")
    assert state.offset == 0
    state, action = press(BrowserState(), "u")
    assert state.unit is ByteUnit.B and action is Action.NONE   # auto -> B -> KiB ...
    assert press(state, "u")[0].unit is ByteUnit.KIB


def test_search_narrows_the_rows_and_backspace_clears_it():
    state, _ = press(BrowserState(), "/", "f", "i", "r", "x", "KEY_BACKSPACE", "\n")
    assert state.search == "fir" and state.mode is Mode.BROWSE
    assert [r.value for r in visible_rows(state, ROWS)] == ["/usr/lib/firefox/firefox"]
    state, _ = press(state, "KEY_BACKSPACE")
    assert state.search == ""
    state, _ = press(BrowserState(), "/", "x", "\x1b")
    assert state.search == "" and state.mode is Mode.BROWSE


def test_help_quit_refresh_live_and_grouping_keys():
    state, _ = press(BrowserState(), "?")
    assert state.mode is Mode.HELP
    state, action = press(state, "q")   # any key closes help; it does not quit
    assert state.mode is Mode.BROWSE and action is Action.NONE
    assert press(state, "q")[1] is Action.QUIT
    assert press(state, "r")[1] is Action.QUERY
    assert press(state, "l")[0].live
    assert press(state, "g")[0].dimension == "name"
    assert press(state, "G")[0].dimension == "host"


def test_enter_on_an_empty_screen_does_nothing():
    assert press(BrowserState(), "\n", rows=[]) == (BrowserState(), Action.NONE)
