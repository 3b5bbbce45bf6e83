"""The silent-host rule and host schedules (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from netwarden.model.schedule import ScheduleError, parse_schedule
from netwarden.fleet.watch import silent_hosts, transitions
from netwarden.store.fleet_queries import FleetHost

MONDAY_9 = dt.datetime(2026, 12, 7, 9, 0, tzinfo=dt.timezone.utc)   # a Monday
OFFICE = parse_schedule("Mon-Fri 08:00-18:00")


def host(name: str, last: dt.datetime) -> FleetHost:
    return FleetHost(name, last.timestamp(), "caught up", 0, 0.0, 10, "")


def test_schedules_parse_and_say_when_a_host_must_be_up() -> None:
    assert OFFICE.expected_since(MONDAY_9) == MONDAY_9.replace(hour=8)
    assert OFFICE.expected_since(MONDAY_9.replace(hour=19)) is None
    assert OFFICE.expected_since(MONDAY_9 - dt.timedelta(days=1)) is None      # Sunday
    weekend = parse_schedule("Sat-Sun 00:00-24:00; Wed 12:00-13:00")
    assert weekend.expected_since(MONDAY_9 + dt.timedelta(days=5, hours=14)) is not None
    assert weekend.expected_since(MONDAY_9 + dt.timedelta(days=2, hours=3, minutes=30))
    assert parse_schedule("always").always
    for bad in ("Mon-Fry 08:00-18:00", "Mon-Fri 8-18", "Mon 18:00-08:00", "weekdays"):
        with pytest.raises(ScheduleError):
            parse_schedule(bad)


def test_silent_after_the_grace_and_back_when_heard_again() -> None:
    silent: set[str] = set()
    quiet = host("a", MONDAY_9 - dt.timedelta(seconds=400))
    assert transitions([quiet], silent, {}, 300, MONDAY_9 - dt.timedelta(seconds=200)) == []
    [event] = transitions([quiet], silent, {}, 300, MONDAY_9)
    assert event.kind.value == "host_silent" and event.field_dict()["silent_s"] == 400
    assert transitions([quiet], silent, {}, 300, MONDAY_9) == []           # said once
    [back] = transitions([host("a", MONDAY_9)], silent, {}, 300, MONDAY_9)
    assert back.kind.value == "host_back" and silent == set()


def test_no_alarm_outside_the_schedule_and_quiet_counts_from_its_start() -> None:
    laptop = host("laptop", MONDAY_9.replace(hour=0) - dt.timedelta(hours=6))  # Sunday 18:00
    schedules = {"laptop": OFFICE}
    silent: set[str] = set()
    assert transitions([laptop], silent, schedules, 300, MONDAY_9.replace(hour=7)) == []
    # 08:00 starts the period: silent only once the grace has passed after that.
    assert transitions([laptop], silent, schedules, 300,
                       MONDAY_9.replace(hour=8, minute=4)) == []
    [event] = transitions([laptop], silent, schedules, 300, MONDAY_9.replace(hour=8, minute=6))
    assert event.field_dict()["host"] == "laptop" and event.field_dict()["silent_s"] == 360
    # "*" is everyone else's schedule.
    assert transitions([host("b", laptop_time := MONDAY_9 - dt.timedelta(days=1))], set(),
                       {"*": OFFICE}, 300, laptop_time + dt.timedelta(hours=5)) == []


def test_memory_is_the_events_written() -> None:
    history = [("host_silent", {"host": "a"}), ("host_silent", {"host": "b"}),
               ("host_back", {"host": "a"}), ("new_device", {"mac": "x"})]
    assert silent_hosts(history) == {"b"}


def test_the_notifier_renders_fleet_events() -> None:
    from netwarden.notify.notices import render_event
    silent = render_event(7, 1000.0, "host_silent",
                          {"host": "laptop", "silent_s": 420, "behind_rows": 12})
    assert silent is not None and silent.title == "Fleet host silent"
    assert silent.body == "laptop: no heartbeat for 420 s\n12 rows were waiting to ship at " \
        "its last heartbeat" and silent.key == "host_silent:laptop"
    back = render_event(8, 1100.0, "host_back", {"host": "laptop", "behind_rows": 0})
    assert back is not None and back.body == "laptop is shipping again"
