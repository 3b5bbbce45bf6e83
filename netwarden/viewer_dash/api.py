"""The JSON API (`/api/v1/flows`, `/api/v1/executables`, `/api/v1/events`,
`/api/v1/devices`) and the token gate.

Parameters (all optional, filterable like the page):
  range=minute|hour|day|week|month|all  (default hour) and offset=N (ranges back), or
  since=EPOCH / until=EPOCH (window starts in [since, until), overriding range);
  include=DIM:VALUE and exclude=DIM:VALUE, repeatable (DIM: exe, name, sha256, parent, domain,
  raddr, rport, lport, user, container, host; the empty VALUE means unknown/none);
  flows: group=DIM (totals per value instead of flow rows), limit (default 1000), page;
  events: kind (repeatable), path, after_id, limit;
  devices: range/offset/since/until choose the presence windows listed (default day),
  mac=MAC keeps one device.
Errors are HTTP 400 with {"error": "..."} naming the parameter.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# is_loopback and token_matches are re-exported: the viewer's routes and tests use them here.
from netwarden.bearer import bind_problem
from netwarden.bearer import is_loopback as is_loopback
from netwarden.bearer import token_matches as token_matches
from netwarden.config import normalise_mac
from netwarden.store.traffic_queries import DIMENSIONS, Filter, QueryError, TrafficView
from netwarden.view.ranges import TimeRange, window

MAX_LIMIT = 100_000
TOKEN_COOKIE = "netwarden_token"


class ApiError(ValueError):
    """A bad request parameter; the message names it."""


@dataclass(frozen=True)
class ApiQuery:
    view: TrafficView
    group: str
    limit: int
    page: int


def _one(args: Mapping[str, Sequence[str]], name: str) -> str | None:
    values = args.get(name) or []
    if len(values) > 1:
        raise ApiError(f"{name}: give it once, not {len(values)} times")
    return values[0] if values else None


def _int(args: Mapping[str, Sequence[str]], name: str, default: int, low: int,
         high: int) -> int:
    text = _one(args, name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(f"{name}: wants an integer, got {text!r}") from None
    if not low <= value <= high:
        raise ApiError(f"{name}: must be from {low} to {high}, got {value}")
    return value


def _epoch(args: Mapping[str, Sequence[str]], name: str) -> float | None:
    text = _one(args, name)
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        raise ApiError(f"{name}: wants epoch seconds, got {text!r}") from None


def parse_filters(args: Mapping[str, Sequence[str]]) -> tuple[Filter, ...]:
    filters = []
    for name, exclude in (("include", False), ("exclude", True)):
        for item in args.get(name) or []:
            dimension, sep, value = item.partition(":")
            if not sep:
                raise ApiError(f"{name}: wants DIM:VALUE (DIM one of "
                               f"{', '.join(DIMENSIONS)}), got {item!r}")
            try:
                filters.append(Filter(dimension, value, exclude))
            except QueryError as exc:
                raise ApiError(f"{name}: {exc}") from None
    return tuple(filters)


def _span(args: Mapping[str, Sequence[str]], now: float,
          default_range: str) -> tuple[float | None, float | None]:
    """(since, until): as given, else from range (default `default_range`) and offset."""
    try:
        time_range = TimeRange.parse(_one(args, "range") or default_range)
    except ValueError as exc:
        raise ApiError(f"range: {exc}") from None
    win = window(time_range, _int(args, "offset", 0, 0, 1_000_000), now)
    since, until = _epoch(args, "since"), _epoch(args, "until")
    return (since if since is not None else win.since,
            until if until is not None else win.until)


def parse_view(args: Mapping[str, Sequence[str]], now: float) -> TrafficView:
    since, until = _span(args, now, "hour")
    return TrafficView(None if since is None else int(since),
                       None if until is None else int(until), parse_filters(args))


def parse_flows_query(args: Mapping[str, Sequence[str]], now: float) -> ApiQuery:
    group = _one(args, "group") or ""
    if group and group not in DIMENSIONS:
        raise ApiError(f"group: unknown grouping {group!r}; known: {', '.join(DIMENSIONS)}")
    return ApiQuery(parse_view(args, now), group, _int(args, "limit", 1000, 1, MAX_LIMIT),
                    _int(args, "page", 0, 0, 10_000_000))


@dataclass(frozen=True)
class EventsQuery:
    since: float | None
    until: float | None
    kinds: tuple[str, ...]
    path: str
    after_id: int
    limit: int


def parse_events_query(args: Mapping[str, Sequence[str]]) -> EventsQuery:
    return EventsQuery(_epoch(args, "since"), _epoch(args, "until"),
                       tuple(args.get("kind") or ()), _one(args, "path") or "",
                       _int(args, "after_id", 0, 0, 1 << 62),
                       _int(args, "limit", 1000, 1, MAX_LIMIT))


@dataclass(frozen=True)
class DevicesQuery:
    since: float | None      # presence windows overlapping [since, until]
    until: float | None
    mac: str | None


def parse_devices_query(args: Mapping[str, Sequence[str]], now: float) -> DevicesQuery:
    since, until = _span(args, now, "day")
    text = _one(args, "mac")
    mac = None if text is None else normalise_mac(text)
    if text is not None and mac is None:
        raise ApiError(f"mac: wants a MAC address like b8:27:eb:12:34:56, got {text!r}")
    return DevicesQuery(since, until, mac)


def parse_watch_span(args: Mapping[str, Sequence[str]], now: float) -> tuple[float, float | None]:
    """/api/v1/watch's outages span: range (default week), since, until."""
    since, until = _span(args, now, "week")
    return (since if since is not None else 0.0), until


# ---- the token (the rule itself: netwarden.bearer, shared with the metrics exporter) ----

def check_bind(host: str, token: str) -> None:
    """Refuse to serve beyond loopback without a token (the data says who talked to whom)."""
    problem = bind_problem(host, token, "[dash] token")
    if problem:
        raise ApiError(problem)
