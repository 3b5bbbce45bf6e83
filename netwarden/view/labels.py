"""How a group's value is shown: empty values get words, users get names."""

from __future__ import annotations

import pwd
from collections.abc import Callable
from datetime import datetime, tzinfo
from functools import lru_cache

#: What an empty value means per dimension (domain and container are filled by issue 3).
EMPTY_LABELS = {"domain": "(unknown)", "parent": "(none)", "container": "(host)",
                "sha256": "(unreadable)", "raddr": "(none)"}


#: What both viewers say about a store from before LAN discovery (no device tables).
NO_DISCOVERY_TABLES = ("This database has no LAN discovery tables yet (it was written by a "
                       "netwarden from before discovery): run `netwarden discovery --once` or "
                       "the sensor once to upgrade it.")


def display_value(dimension: str, value: object,
                  user_name: Callable[[int], str] | None = None) -> str:
    if value is None or value == "":
        return EMPTY_LABELS.get(dimension, "(none)")
    if dimension == "user" and user_name is not None and isinstance(value, int):
        name = user_name(value)
        return f"{value} ({name})" if name else str(value)
    return str(value)


@lru_cache(maxsize=1024)
def system_user_name(uid: int) -> str:
    """The account name of `uid` on this machine, '' if it has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return ""


def format_time(epoch: float | None, tz: tzinfo | None, with_date: bool = True) -> str:
    if epoch is None:
        return "-"
    moment = datetime.fromtimestamp(epoch, tz)
    return moment.strftime("%m-%d %H:%M" if with_date else "%H:%M:%S")


def explain_unavailable(exc: Exception) -> str:
    text = str(exc)
    if "readonly database" in text:
        # A WAL database whose -shm file is gone (the sensor stopped) can only be read by a
        # user who may create that file next to it.
        return (f"{text}: the sensor is not running and its shared-memory file is missing; "
                "start the sensor, or read a copy of the database with --db")
    if "locked" in text:
        return f"{text}: another program holds a lock on it; r tries again"
    return text


def shorten_path(text: str, width: int, ellipsis: str = "\u2026") -> str:
    """`text` in at most `width` characters: a long path loses the middle of its directory
    part, never its program name ('/usr/lib/\u2026/bin/firefox'); the viewer shows the whole
    path on hover. A name longer than `width` alone keeps its end."""
    if len(text) <= width:
        return text
    head, sep, name = text.rpartition("/")
    if not sep or len(name) + len(ellipsis) + 1 >= width:
        return ellipsis + text[-(width - len(ellipsis)):]
    room = width - len(name) - len(ellipsis) - 1   # characters left for the directory
    keep_start = (room + 1) // 2
    return head[:keep_start] + ellipsis + head[len(head) - (room - keep_start):] + "/" + name
