"""Flood control with an injected clock: cooldown, rate limit, summaries, persistence."""

from __future__ import annotations

import json

import pytest

from netwarden.notify.flood import FloodControl, FloodPolicy
from netwarden.notify.notices import Notice, render_event


def new_program(i: int, t: float = 0.0) -> Notice:
    notice = render_event(i, t, "new_executable",
                          {"path": f"/usr/bin/prog{i}", "sha256": "a" * 64, "name": f"prog{i}",
                           "uid": 1000})
    assert notice is not None
    return notice


def health_error(i: int, t: float) -> Notice:
    notice = render_event(i, t, "sensor_error", {"component": "health", "state": "lost",
                                                 "message": "ring buffer full", "required": False,
                                                 "counters": {"exec_ring_drops": 3}})
    assert notice is not None
    return notice


def test_a_burst_of_50_new_programs_is_four_notices_and_one_summary():
    flood = FloodControl(FloodPolicy(max_per_window=5, window_s=60))
    shown = [n for i in range(50) for n in flood.offer(new_program(i), 100.0)]
    assert [n.name for n in shown] == ["prog0", "prog1", "prog2", "prog3"]
    summary = flood.due(100.0)
    assert len(summary) == 1
    assert summary[0].kind == "summary"
    assert summary[0].title == "netwarden: 46 more notifications"
    assert summary[0].body == "46 new programs: prog4, prog5, prog6, prog7, prog8, …"
    assert summary[0].event_ids == tuple(range(4, 50))
    assert flood.due(100.0) == []          # the window is full now
    assert flood.folded == 46


def test_the_window_slides_and_later_folds_wait_for_a_free_slot():
    flood = FloodControl(FloodPolicy(max_per_window=3, window_s=60))
    assert len(flood.offer(new_program(0), 0.0)) == 1
    assert len(flood.offer(new_program(1), 1.0)) == 1
    assert flood.offer(new_program(2), 2.0) == []   # the last slot is for summaries
    assert [n.name for n in flood.due(2.0)] == ["prog2"]   # one waiting: shown as itself
    assert flood.offer(new_program(3), 10.0) == []
    assert flood.offer(new_program(4), 11.0) == []
    assert flood.due(59.0) == []                         # the window is still full
    later = flood.due(60.0)                              # the first slot expired
    assert [n.kind for n in later] == ["summary"]
    assert later[0].body == "2 new programs: prog3, prog4"


def test_cooldown_per_program_and_kind_and_the_count_of_what_was_held():
    flood = FloodControl(FloodPolicy(cooldown_s=300, max_per_window=100))
    changed = render_event(7, 0, "exe_modified", {"path": "/usr/bin/prog1", "name": "prog1",
                                                  "old_sha256": "a" * 64, "new_sha256": "b" * 64})
    assert changed is not None
    assert len(flood.offer(new_program(1), 0.0)) == 1
    assert flood.offer(new_program(1), 10.0) == []      # same program and kind: cooling down
    assert flood.offer(new_program(1), 20.0) == []
    assert len(flood.offer(changed, 30.0)) == 1         # another kind: its own key
    again = flood.offer(new_program(1), 301.0)
    assert len(again) == 1
    assert again[0].body.endswith("(2 more like it were held back since the last one)")
    assert flood.cooled == 2


def test_sensor_trouble_every_10_s_for_an_hour_notifies_four_times():
    flood = FloodControl(FloodPolicy(trouble_cooldown_s=900, max_per_window=5, window_s=60))
    shown = [n for i in range(360) for n in flood.offer(health_error(i, i * 10.0), i * 10.0)]
    assert [n.time for n in shown] == [0.0, 900.0, 1800.0, 2700.0]
    assert shown[0].title == "netwarden lost data"
    assert "exec_ring_drops +3" in shown[0].body
    assert "89 more like it were held back" in shown[1].body


def test_summary_leads_with_the_worst_urgency():
    flood = FloodControl(FloodPolicy(max_per_window=2))
    flood.offer(new_program(0), 0)
    flood.offer(new_program(1), 0)
    flood.offer(health_error(2, 0), 0)
    trouble = render_event(3, 0, "sensor_error", {"component": "net/count_send",
                                                  "state": "failed", "required": True})
    assert trouble is not None
    flood.offer(trouble, 0)
    (summary,) = flood.due(0)
    assert summary.body.splitlines()[0].startswith("2 sensor trouble reports")
    assert summary.urgency.name == "CRITICAL"


def test_snapshot_round_trip_keeps_pending_window_and_cooldowns():
    policy = FloodPolicy(max_per_window=2, window_s=60)
    flood = FloodControl(policy)
    flood.offer(new_program(0), 0)
    flood.offer(new_program(1), 1)
    flood.offer(new_program(0), 2)
    restored = FloodControl.from_snapshot(policy, json.loads(json.dumps(flood.snapshot())))
    assert restored.pending == 1
    assert restored.offer(new_program(0), 3) == []      # still cooling down
    assert restored.due(3) == [new_program(1)]
    assert restored.due(4) == []


def test_policy_keeps_a_slot_for_summaries():
    with pytest.raises(ValueError):
        FloodPolicy(max_per_window=1)


def test_held_counts_are_forgotten_after_two_cooldowns():
    flood = FloodControl(FloodPolicy(cooldown_s=100, trouble_cooldown_s=100, max_per_window=50))
    flood.offer(new_program(1), 0.0)
    flood.offer(new_program(1), 10.0)
    flood.offer(new_program(2), 0.0)
    flood.offer(new_program(2), 10.0)
    (soon,) = flood.offer(new_program(1), 150.0)
    (late,) = flood.offer(new_program(2), 201.0)
    assert soon.body.endswith("(1 more like it was held back since the last one)")
    assert "held back" not in late.body
