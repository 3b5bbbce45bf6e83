"""The layout prefetch: started when the page is served, taken by the layout request."""

from __future__ import annotations

import threading

import pytest

from netwarden.viewer_dash.prefetch import PrefetchedLayout


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def counting_build():
    calls = []

    def build() -> int:
        calls.append(threading.current_thread().name)
        return len(calls)
    return build, calls


def test_without_a_prefetch_each_call_builds():
    build, calls = counting_build()
    layout = PrefetchedLayout(build)
    assert layout() == 1 and layout() == 2
    assert layout.served_prefetched == 0


def test_a_prefetch_is_taken_once_and_built_in_the_background():
    build, calls = counting_build()
    layout = PrefetchedLayout(build)
    layout.prefetch()
    layout.prefetch()                      # a second page request shares it
    assert layout() == 1
    assert calls == ["layout-prefetch"]
    assert layout.served_prefetched == 1
    assert layout() == 2                   # used up: the next visit builds anew
    assert calls[-1] == threading.current_thread().name


def test_a_stale_prefetch_is_not_served():
    build, calls = counting_build()
    clock = Clock()
    layout = PrefetchedLayout(build, max_age_s=5, clock=clock)
    layout.prefetch()
    clock.now += 6
    assert layout() == 2                   # built again, in the caller
    assert layout.served_prefetched == 0
    layout.prefetch()                      # a stale job does not block a new one
    assert layout() == 3 and layout.served_prefetched == 1


def test_a_failed_prefetch_is_built_again_where_the_error_shows():
    attempts = []

    def build() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise RuntimeError("store locked")
        raise ValueError("still broken")
    layout = PrefetchedLayout(build)
    layout.prefetch()
    with pytest.raises(ValueError, match="still broken"):
        layout()
    assert len(attempts) == 2
