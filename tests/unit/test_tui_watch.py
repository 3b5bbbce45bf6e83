"""The TUI's connectivity view as text (golden at 80x24), and its keys."""

from __future__ import annotations

from datetime import timezone

import pytest

from netwarden.store.watch_queries import Outage, TargetStatus
from netwarden.viewer_tui.render import Screen, render
from netwarden.viewer_tui.state import Action, BrowserState, View, handle_key
from netwarden.viewer_tui.watch_view import WatchData
from tests.unit.test_tui_render import check_golden

T0 = 1_700_000_000   # 2023-11-14 22:13:20 UTC
ROWS = [
    TargetStatus("internet", "group", "", True, "down", T0 - 300, None, None, None, 0.99, 0.998),
    TargetStatus("gateway", "icmp:192.168.1.1", "", False, "up", T0 - 86400 * 3, T0 - 20,
                 0.412, 0.5, 1.0, 0.9971),
    TargetStatus("quad9", "dns:example.com@9.9.9.9", "internet", False, "down", T0 - 300,
                 T0 - 10, None, 12.25, 0.99, 0.998),
    TargetStatus("cloudflare", "tcp:1.1.1.1:443", "internet", False, "down", T0 - 290,
                 T0 - 10, None, 8.0, 0.99, 0.998),
    TargetStatus("intranet", "https://intranet.example/health", "", False, "unknown", None,
                 None, None, None, None, None),
]
OUTAGES = [
    Outage("internet", "group", "", True, T0 - 300, None, T0 - 10,
           "quad9: timed out; cloudflare: Connection refused"),
    Outage("gateway", "icmp:192.168.1.1", "", False, T0 - 7200, T0 - 6600, T0 - 6630,
           "timed out"),
]
WATCH = BrowserState(view=View.WATCH)


def watch_frame(data: WatchData | None, width: int = 80, height: int = 24,
                **kw: object) -> str:
    screen = Screen(WATCH, [], "", watch=data, now=T0, **kw)  # type: ignore[arg-type]
    return "\n".join(render(screen, width, height, timezone.utc).lines)


def test_watch_80x24_golden():
    check_golden("tui_watch_80x24.txt",
                 watch_frame(WatchData(ROWS, OUTAGES), message="read 22:13:20"))


@pytest.mark.parametrize("width, height", [(40, 10), (80, 24), (132, 40), (80, 8)])
def test_every_line_is_exactly_the_width_ascii_and_the_screen_the_height(width: int,
                                                                         height: int):
    lines = watch_frame(WatchData(ROWS, OUTAGES * 10), width, height).split("\n")
    assert len(lines) == height and {len(line) for line in lines} == {width}
    assert all(line.isascii() for line in lines)
    if height == 8:
        assert "netwarden watch outages" in lines[-2]


def test_no_targets_no_tables_and_reading_are_said():
    assert "No targets recorded yet" in watch_frame(WatchData())
    assert "no watch tables" in watch_frame(WatchData(problem="this store has no watch "
                                                      "tables yet"))
    assert "reading the store" in watch_frame(None, loading=True)


def test_w_switches_between_traffic_and_connectivity_and_reads_again():
    state, action = handle_key(BrowserState(), "w", [], 10)
    assert (state.view, action) == (View.WATCH, Action.QUERY)
    for key in ("w", "KEY_BACKSPACE"):
        back, action = handle_key(state, key, [], 10)
        assert (back.view, action) == (View.TRAFFIC, Action.QUERY)
    devices, _ = handle_key(state, "d", [], 10)
    assert devices.view is View.DEVICES
    assert handle_key(state, "r", [], 10)[1] is Action.QUERY
    assert handle_key(state, "q", [], 10)[1] is Action.QUIT
