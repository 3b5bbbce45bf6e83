"""Time ranges a viewer shows (last minute ... all) and the history offset that steps them."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from netwarden.store.traffic_queries import Filter, TrafficView


class TimeRange(enum.Enum):
    MINUTE = ("minute", 60)
    HOUR = ("hour", 3600)
    DAY = ("day", 86400)
    WEEK = ("week", 7 * 86400)
    MONTH = ("month", 30 * 86400)
    ALL = ("all", 0)

    @property
    def label(self) -> str:
        return self.value[0]

    @property
    def seconds(self) -> int:
        return self.value[1]

    @classmethod
    def parse(cls, text: str) -> "TimeRange":
        for item in cls:
            if item.label == text:
                return item
        raise ValueError(f"unknown time range {text!r}; known: "
                         + ", ".join(r.label for r in cls))

    def next(self, step: int = 1) -> "TimeRange":
        members = list(TimeRange)
        return members[(members.index(self) + step) % len(members)]


@dataclass(frozen=True)
class Window:
    """Window starts in [since, until); None for an open end ('all')."""

    since: int | None
    until: int | None

    def describe(self) -> str:
        return "all time" if self.since is None else f"{self.since}..{self.until}"


def window(time_range: TimeRange, offset: int, now: float) -> Window:
    """The range ending `offset` range-lengths before now ('all' has no offset).

    A row's time is its write window's start, so the window is widened by nothing: a row
    written at 10:00:05 for 10:00:00..10:00:10 belongs to a range that starts by 10:00:00.
    """
    if time_range is TimeRange.ALL:
        return Window(None, None)
    until = int(now) + 1 - max(0, offset) * time_range.seconds
    return Window(until - time_range.seconds, until)


def traffic_view(win: Window, filters: tuple[Filter, ...] = ()) -> TrafficView:
    return TrafficView(win.since, win.until, tuple(filters))


#: Chart resolutions offered, in seconds; "auto" picks from these.
RESOLUTIONS: tuple[int, ...] = (10, 60, 300, 900, 3600, 4 * 3600, 6 * 3600, 86400)


def auto_bucket(span_s: int, points: int = 120) -> int:
    """The smallest offered resolution that shows `span_s` in at most `points` buckets."""
    for bucket in RESOLUTIONS:
        if span_s / bucket <= points:
            return bucket
    return RESOLUTIONS[-1] * max(1, -(-span_s // (RESOLUTIONS[-1] * points)))
