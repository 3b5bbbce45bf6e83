"""The page's layout, computed while the browser is still busy with the page's scripts.

A first visit asks for `/` (the HTML), then spends ~0.6 s evaluating Dash, React and
plotly.js before it asks for `/_dash-layout`, whose queries and first chart take the server
~0.1 s more. `PrefetchedLayout.prefetch()` is called when `/` is served and starts building
the layout in a background thread; the layout request then takes that result when it is
recent enough, or builds a fresh one. Several page requests in a row share one prefetch.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PrefetchedLayout(Generic[T]):
    """Callable like the layout function it wraps; :meth:`prefetch` starts one early."""

    def __init__(self, build: Callable[[], T], max_age_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._build = build
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: _Job[T] | None = None
        self.served_prefetched = 0

    def prefetch(self) -> None:
        with self._lock:
            if self._pending is not None and not self._stale(self._pending):
                return
            job = self._pending = _Job(self._build, self._clock())
        job.start()

    def _stale(self, job: _Job[T]) -> bool:
        return self._clock() - job.started > self._max_age_s

    def __call__(self) -> T:
        with self._lock:
            job, self._pending = self._pending, None
        if job is not None and not self._stale(job):
            result = job.result()
            if result is not None:
                self.served_prefetched += 1
                return result
        return self._build()


class _Job(Generic[T]):
    """One background build; a build that raised is done with no result (the caller builds
    again in its own thread, where the error shows)."""

    def __init__(self, build: Callable[[], T], started: float) -> None:
        self.started = started
        self._build = build
        self._done = threading.Event()
        self._result: T | None = None
        self._thread = threading.Thread(target=self._run, name="layout-prefetch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._build()
        except Exception:   # noqa: BLE001 - the request thread builds again and reports
            self._result = None
        finally:
            self._done.set()

    def result(self) -> T | None:
        self._done.wait()
        return self._result
