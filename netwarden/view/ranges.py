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


def bucket_aligned(origin: int, span_s: int, bucket_s: int) -> tuple[int, int]:
    """(origin, span) widened back to a multiple of the bucket (epoch, so UTC days).

    Bins on the clock's own boundaries read as "09:00-10:00", and hour- and day-sized bins
    are then whole rollup periods, which the store sums ahead (store/rollups.py) instead of
    every raw row; bins of a range that starts at 09:17 could only be read from raw rows.
    The first bin still counts the range's rows only.
    """
    start = origin - origin % bucket_s
    return start, span_s + origin - start


#: The narrowest span a chart zoomed to a young store's data shows (see chart_span).
MIN_CHART_SPAN_S = 300


@dataclass(frozen=True)
class ChartSpan:
    """The time a traffic chart covers: [origin, origin + span); `zoomed` when that is
    narrower than the range because the store holds less than the range."""

    origin: int
    span: int
    zoomed: bool = False


def chart_span(win: Window, bounds: tuple[int, int] | None, now: float) -> ChartSpan:
    """What the chart of `win` shows, given the store's first and last row times.

    A new install's store is minutes old: drawn over the whole last hour, its traffic would
    be a sliver at the right edge. So a range that begins before the store's first row is
    shown from that row's minute on (at least MIN_CHART_SPAN_S, ending at the range's end),
    which lets the automatic resolution pick fine bins. The range still means what it says:
    totals and tables cover all of it, and once the store is older than the range nothing
    changes. 'all' spans the store's rows, as before.
    """
    if win.since is None or win.until is None:
        if bounds is None:
            return ChartSpan(int(now), 60)
        return ChartSpan(bounds[0], max(60, bounds[1] - bounds[0] + 1))
    if bounds is None or bounds[0] <= win.since or bounds[0] >= win.until:
        return ChartSpan(win.since, win.until - win.since)
    origin = min(bounds[0] - bounds[0] % 60, win.until - MIN_CHART_SPAN_S)
    if origin <= win.since:
        return ChartSpan(win.since, win.until - win.since)
    return ChartSpan(origin, win.until - origin, zoomed=True)
