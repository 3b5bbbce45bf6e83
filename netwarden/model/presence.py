"""Presence windows: when a device was on the network. The rule, stated once.

A window has a start, a last sighting and, once closed, an end (its last sighting). A
sighting within ``gap`` of the open window's last one extends it; a later one (or one after
the window was closed) opens a new window. A window whose device has been unseen for longer
than ``gap`` closes. Sightings carry the time the device was seen (a neighbour entry's last
confirmation), so an old sighting never extends or reopens anything. A device is present at
a time a window covers (an open one up to its last sighting).

What a sighting does is decided here (:func:`on_sighting`), for the store's discovery writer
to apply. Closing stale windows and asking who was present at a time are one SQL statement
each in the store (``DiscoveryWriter.close_stale``, ``queries.present_at``), run where the
windows are; tests/contract/test_discovery_store.py holds them to this rule.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True)
class Window:
    start: float
    last_seen: float
    end: float | None = None

    @property
    def is_open(self) -> bool:
        return self.end is None


class Action(enum.Enum):
    IGNORE = "ignore"     # not newer than what the window already has
    EXTEND = "extend"     # the open window's last_seen moves to the sighting
    OPEN = "open"         # a new window starts (the open one, if any, closes first)


def on_sighting(latest: Window | None, seen: float, gap: float) -> Action:
    if latest is None:
        return Action.OPEN
    if seen <= latest.last_seen:
        return Action.IGNORE
    if latest.is_open and seen - latest.last_seen <= gap:
        return Action.EXTEND
    return Action.OPEN
