"""VirusTotal pacing (pure, clock passed in) and verdict classification."""

from __future__ import annotations

from netwarden.notify.virustotal import DAY_S, classify, next_lookup_at
from netwarden.store.notifier_state import VerdictStatus

NOON = 20000 * DAY_S + 43200.0


def test_four_per_minute():
    assert next_lookup_at(NOON, [], 4, 500) == NOON
    three = [NOON - 50, NOON - 40, NOON - 30]
    assert next_lookup_at(NOON, three, 4, 500) == NOON
    four = three + [NOON - 1]
    assert next_lookup_at(NOON, four, 4, 500) == NOON + 10   # the oldest leaves the minute
    assert next_lookup_at(NOON - 60 + 70, four, 4, 500) == NOON - 60 + 70


def test_five_hundred_per_utc_day():
    today = [NOON - 40000 + i * 60 for i in range(500)]
    assert next_lookup_at(NOON, today, 4, 500) == 20001 * DAY_S   # next UTC midnight
    yesterday = [t - DAY_S for t in today]
    assert next_lookup_at(NOON, yesterday, 4, 500) == NOON


def test_classify():
    assert classify({"malicious": 0, "undetected": 70}, 1) is VerdictStatus.CLEAN
    assert classify({"malicious": 2, "undetected": 68}, 1) is VerdictStatus.MALICIOUS
    assert classify({"malicious": 2, "undetected": 68}, 3) is VerdictStatus.CLEAN
