"""The TUI's devices view and mute list as text (golden at 80x24), and their keys."""

from __future__ import annotations

from datetime import timezone

import pytest

from netwarden.mutes import Mutes
from netwarden.store.device_queries import DeviceRow, PresenceRow
from netwarden.store.traffic_queries import Filter, TrafficTotal
from netwarden.view.ranges import TimeRange
from netwarden.viewer_tui.devices_view import (
    DevicesData,
    detail_lines,
    device_page_size,
)
from netwarden.viewer_tui.mutes_view import MuteEntry, MuteListData, mute_entries
from netwarden.viewer_tui.render import Screen, render, view_page_size
from netwarden.viewer_tui.state import (
    Action,
    BrowserState,
    Mode,
    View,
    handle_key,
    mute_target,
)
from tests.unit.test_tui_render import check_golden

T0 = 1_700_000_000   # 2023-11-14 22:13:20 UTC
HOUR = 3600
PI = DeviceRow(
    mac="b8:27:eb:12:34:56", ip="10.78.0.11", ips=["10.78.0.11", "10.78.0.21"],
    vendor="Raspberry Pi Foundation", randomized=False, device_type="single-board computer",
    type_reasons=["vendor Raspberry Pi Foundation"],
    names=[{"name": "raspi.local", "method": "mdns"}, {"name": "RASPI", "method": "netbios"}],
    services=[], open_ports=[22, 80], interface="eth0", first_seen=T0 - 20 * HOUR,
    last_seen=T0 - 60, known_name="kitchen pi", trusted=True, present=True)
PHONE = DeviceRow(
    mac="da:a1:19:00:00:14", ip="10.78.0.14", ips=["10.78.0.14"], vendor="", randomized=True,
    device_type="phone or laptop", type_reasons=["randomised MAC"], names=[], services=[],
    open_ports=None, interface="eth0", first_seen=T0 - 1800, last_seen=T0 - 30,
    known_name="", trusted=False, present=True)
HUE = DeviceRow(
    mac="00:17:88:01:02:03", ip="10.78.0.12", ips=["10.78.0.12"], vendor="Philips Lighting BV",
    randomized=False, device_type="smart home hub", type_reasons=[],
    names=[{"name": "Hue Bridge", "method": "ssdp"}], services=[], open_ports=[],
    interface="eth0", first_seen=T0 - 8 * HOUR, last_seen=T0 - 6 * HOUR, known_name="",
    trusted=False, present=False)
WINDOWS = [PresenceRow(PI.mac, T0 - 20 * HOUR, T0 - 14 * HOUR, T0 - 14 * HOUR),
           PresenceRow(PI.mac, T0 - 2 * HOUR, T0 - 60, None),
           PresenceRow(HUE.mac, T0 - 8 * HOUR, T0 - 6 * HOUR, T0 - 6 * HOUR),
           PresenceRow(PHONE.mac, T0 - 1800, T0 - 30, None)]
DATA = DevicesData([PHONE, PI, HUE], WINDOWS, T0 - 24 * HOUR + 1, T0 + 1)


def devices_frame(state: BrowserState, data: DevicesData | None = DATA, width: int = 80,
                  height: int = 24, **kw: object) -> str:
    screen = Screen(state, [], "", devices=data, now=T0, **kw)  # type: ignore[arg-type]
    return "\n".join(render(screen, width, height, timezone.utc).lines)


DEVICES = BrowserState(view=View.DEVICES)


def test_devices_80x24_golden():
    state = DEVICES
    state, _ = handle_key(state, "KEY_DOWN", [], device_page_size(24), devices=3)
    check_golden("tui_devices_80x24.txt", devices_frame(state, message="read 22:13:20"))


def test_the_selected_device_is_marked_and_detailed():
    rendered = render(Screen(BrowserState(view=View.DEVICES, device_cursor=2), [], "",
                             devices=DATA, now=T0), 80, 24, timezone.utc)
    assert rendered.highlight == 5
    assert rendered.lines[5].startswith(">      00:17:88:01:02:03 10.78.0.12")
    text = "\n".join(rendered.lines)
    assert "-- Hue Bridge (00:17:88:01:02:03) ---" in text
    assert "status: not here now | last seen 11-14 16:13" in text
    assert "(first seen 11-14 14:13):" in text
    assert "open ports: none open" in text
    # Closed 8 h to 6 h ago: lit cells only in that part of the day.
    bar = [line for line in rendered.lines if line.startswith("Hue Bridge ")][0]
    cells = bar[21:]
    assert cells.count("#") in (5, 6) and cells.index("#") == 39


@pytest.mark.parametrize("width, height", [(80, 24), (132, 50), (100, 30), (40, 12),
                                           (20, 5)])
def test_every_line_is_exactly_the_width_ascii_and_the_screen_the_height(width: int,
                                                                          height: int):
    for state in (BrowserState(view=View.DEVICES, device_cursor=1),
                  BrowserState(view=View.MUTES)):
        screen = Screen(state, [], "", devices=DATA, now=T0,
                        mutes=MuteListData("/h/.config/netwarden/mutes.toml",
                                           mute_entries(Mutes(frozenset({"/usr/bin/curl"})))))
        lines = render(screen, width, height, timezone.utc).lines
        assert len(lines) == height
        assert {len(line) for line in lines} == {width}
        assert all(line.isascii() for line in lines)


def test_wide_terminals_get_every_column_of_the_table():
    wide = devices_frame(DEVICES, width=140)
    header = wide.splitlines()[2]
    assert header.split() == ["FLAG", "MAC", "IP", "VENDOR", "NAME", "TYPE", "PORTS", "SEEN"]
    assert "single-board comp~ 22,80" in wide and "1m ago" in wide
    assert "FLAGS" not in header      # the flags are the first column, not also the last


def test_short_terminals_keep_the_table_and_drop_details():
    assert (detail_lines(24), device_page_size(24)) == (7, 13)
    assert (detail_lines(10), device_page_size(10)) == (3, 3)
    assert (detail_lines(6), device_page_size(6)) == (0, 2)
    assert view_page_size(View.DEVICES, 24) == 13
    assert view_page_size(View.TRAFFIC, 24) == 20


def test_no_devices_no_discovery_tables_and_reading_are_said():
    empty = devices_frame(DEVICES, DevicesData())
    assert "no LAN devices recorded yet" in empty and "0 devices" in empty
    old = devices_frame(DEVICES, DevicesData(problem="this database has no LAN discovery "
                                                     "tables yet"))
    assert "no LAN discovery tables" in old and "no data" in old
    assert "reading the store ..." in devices_frame(DEVICES, None, loading=True)


def test_a_device_without_windows_in_range_says_so():
    text = devices_frame(DEVICES, DevicesData([PHONE], [], T0 - HOUR, T0))
    assert "not seen in this range" in text


def test_mutes_80x24_golden():
    entries = mute_entries(Mutes(frozenset({"/usr/bin/curl", "firefox-esr"}),
                                 frozenset({"device_changed"})))
    state = BrowserState(view=View.MUTES, mute_cursor=1)
    screen = Screen(state, [], "", mutes=MuteListData("/home/alice/.config/netwarden/mutes.toml",
                                                      entries), message="unmuted nginx")
    check_golden("tui_mutes_80x24.txt",
                 "\n".join(render(screen, 80, 24, timezone.utc).lines))


def test_an_empty_or_broken_mute_list_is_explained():
    empty = Screen(BrowserState(view=View.MUTES), [], "", mutes=MuteListData("/m.toml"))
    assert "nothing is muted" in "\n".join(render(empty, 80, 24).lines)
    broken = Screen(BrowserState(view=View.MUTES), [], "",
                    mutes=MuteListData("/m.toml", problem="/m.toml: not valid TOML: x"))
    text = "\n".join(render(broken, 80, 24).lines)
    assert "not valid TOML" in text and "no data" in text


def press(state: BrowserState, *keys: str, rows=(), devices: int = 3, mutes: int = 2,
          page: int = 13) -> tuple[BrowserState, Action]:
    action = Action.NONE
    for key in keys:
        state, action = handle_key(state, key, list(rows), page, devices=devices,
                                   mutes=mutes)
    return state, action


def test_d_switches_between_traffic_and_devices_and_reads_again():
    state, action = press(BrowserState(), "d")
    assert (state.view, action) == (View.DEVICES, Action.QUERY)
    for back in ("d", "\x1b", "KEY_BACKSPACE"):
        again, action = press(state, back)
        assert (again.view, action) == (View.TRAFFIC, Action.QUERY)


def test_device_keys_move_the_device_cursor_and_the_presence_range():
    state, action = press(DEVICES, "KEY_DOWN", "KEY_DOWN", "KEY_DOWN")
    assert (state.device_cursor, state.cursor, action) == (2, 0, Action.NONE)
    state, _ = press(state, "KEY_HOME")
    assert state.device_cursor == 0
    state, _ = press(DEVICES, "KEY_END", devices=40)
    assert (state.device_cursor, state.device_top) == (39, 27)
    state, action = press(DEVICES, "t")
    assert (state.presence_range, action) == (TimeRange.WEEK, Action.QUERY)
    assert press(DEVICES, "T")[0].presence_range is TimeRange.HOUR
    assert press(DEVICES, "t", "t", "t")[0].presence_range is TimeRange.ALL
    assert press(DEVICES, "t", "t", "t", "t")[0].presence_range is TimeRange.HOUR
    assert press(DEVICES, "r")[1] is Action.QUERY and press(DEVICES, "q")[1] is Action.QUIT
    assert press(DEVICES, "?")[0].mode is Mode.HELP
    # Traffic keys mean nothing here: no filter, no grouping change.
    assert press(DEVICES, "\n", "e", "g", "m") == (DEVICES, Action.NONE)


ROWS = [TrafficTotal("/usr/bin/curl", 10, 500, 100, 200),
        TrafficTotal("/usr/lib/firefox/firefox", 900, 9000, 50, 300)]


def test_m_mutes_the_selected_program_and_M_opens_the_mute_list():
    state, action = press(BrowserState(), "m", rows=ROWS)
    assert action is Action.MUTE
    assert mute_target(state, ROWS) == "/usr/lib/firefox/firefox"
    moved, _ = press(state, "KEY_DOWN", rows=ROWS, page=20)
    assert mute_target(moved, ROWS) == "/usr/bin/curl"
    state, action = press(BrowserState(), "M", rows=ROWS)
    assert (state.view, action) == (View.MUTES, Action.QUERY)


def test_what_m_mutes_in_each_grouping():
    by_name = BrowserState(dimension="name")
    assert mute_target(by_name, [TrafficTotal("curl", 1, 1, 1, 1)]) == "curl"
    drilled = BrowserState(dimension="domain", filters=(Filter("exe", "/usr/bin/curl"),))
    assert mute_target(drilled, [TrafficTotal("example.org", 1, 1, 1, 1)]) == "/usr/bin/curl"
    two = BrowserState(dimension="domain", filters=(Filter("exe", "/a"), Filter("exe", "/b")))
    assert mute_target(two, []) is None
    assert mute_target(BrowserState(dimension="raddr"), [TrafficTotal("8.8.8.8", 1, 1, 1, 1)]) \
        is None
    assert mute_target(BrowserState(), []) is None


def test_mute_list_keys():
    mutes = BrowserState(view=View.MUTES)
    state, action = press(mutes, "KEY_DOWN", "KEY_DOWN", "KEY_DOWN")
    assert (state.mute_cursor, action) == (1, Action.NONE)
    for key in ("m", "KEY_DC", "\n"):
        assert press(state, key)[1] is Action.UNMUTE
    assert press(state, "m", mutes=0)[1] is Action.NONE
    for back in ("M", "\x1b"):
        assert press(state, back)[0].view is View.TRAFFIC
    assert press(state, "d")[0].view is View.DEVICES
    assert press(state, "r")[1] is Action.QUERY


def test_mute_entries_list_programs_then_kinds():
    assert mute_entries(Mutes(frozenset({"b", "/a"}), frozenset({"new_device"}))) == (
        MuteEntry("program", "/a"), MuteEntry("program", "b"), MuteEntry("kind", "new_device"))


def test_help_names_the_new_keys():
    text = "\n".join(render(Screen(BrowserState(mode=Mode.HELP), [], ""), 80, 24).lines)
    for line in ("  m               mute the selected program", "  M               the mute list",
                 "  d               LAN devices and presence"):
        assert line in text
    assert len(text.splitlines()) == 24
