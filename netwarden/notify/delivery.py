"""Delivering the outbox: one thread per channel, retries with backoff, outcomes recorded.

Each channel has its own worker thread and its own connection to the state file, so a slow
or dead channel (a webhook that hangs until its timeout, a broker that is down) delays only
its own deliveries. A failed attempt is retried after ``backoff_s``, doubling each time (at
most 10 minutes), until ``max_attempts``; then, or at once for a permanent error (a 4xx from a
webhook, a rejected login), the delivery is recorded as failed with the reason. Pending rows
survive a restart: they are in the state file, not in memory.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from netwarden.notify.notices import Notice
from netwarden.stopper import Stopper
from netwarden.store.notifier_state import Delivery, DeliveryStatus, NotifierState

log = logging.getLogger("netwarden.notify")

MAX_BACKOFF_S = 600.0


class DeliveryError(Exception):
    """An attempt failed. ``permanent``: retrying cannot help (bad URL, rejected key)."""

    def __init__(self, message: str, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    backoff_s: float = 2.0

    def delay(self, attempts: int) -> float:
        """Seconds before the next try after ``attempts`` failed ones."""
        return min(self.backoff_s * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S)


class Channel(Protocol):
    name: str
    retry: RetryPolicy

    def deliver(self, notice: Notice, delivery_id: int) -> str:
        """Send one notice; return a short detail (an id, a status). Raise DeliveryError."""

    def close(self) -> None:
        ...


def attempt(channel: Channel, delivery: Delivery, now: float) -> tuple[DeliveryStatus, int, str,
                                                                        float | None]:
    """Try one delivery; returns (status, attempts, detail, next_try)."""
    attempts = delivery.attempts + 1
    try:
        detail = channel.deliver(Notice.from_json(delivery.notice), delivery.id)
    except DeliveryError as exc:
        if exc.permanent or attempts >= channel.retry.max_attempts:
            why = "permanent error" if exc.permanent else f"gave up after {attempts} attempts"
            return DeliveryStatus.FAILED, attempts, f"{why}: {exc}", None
        return (DeliveryStatus.PENDING, attempts, f"attempt {attempts} failed: {exc}",
                now + channel.retry.delay(attempts))
    return DeliveryStatus.DELIVERED, attempts, detail, None


class DeliveryWorker(threading.Thread):
    """Delivers one channel's due rows until ``stop``; sleeps briefly when none are due."""

    def __init__(self, channel: Channel, state_path: Path, stop: Stopper,
                 clock: Callable[[], float] = time.time, idle_s: float = 0.2) -> None:
        super().__init__(name=f"deliver-{channel.name}", daemon=True)
        self.channel = channel
        self._state_path = state_path
        self._stopper = stop
        self._clock = clock
        self._idle_s = idle_s

    def run(self) -> None:
        state = NotifierState(self._state_path)
        try:
            while not self._stopper.is_set():
                if not self._deliver_due(state):
                    self._stopper.wait(self._idle_s)
        finally:
            self.channel.close()
            state.close()

    def _deliver_due(self, state: NotifierState) -> bool:
        due = state.due(self.channel.name, self._clock())
        for delivery in due:
            if self._stopper.is_set():
                break
            try:
                status, attempts, detail, next_try = attempt(self.channel, delivery,
                                                             self._clock())
            except Exception as exc:  # a bug in a channel must not kill the worker
                log.exception("%s: delivery %d crashed", self.channel.name, delivery.id)
                status, attempts, detail, next_try = (
                    DeliveryStatus.PENDING, delivery.attempts + 1,
                    f"internal error: {exc!r}",
                    self._clock() + self.channel.retry.delay(delivery.attempts + 1))
                if attempts >= self.channel.retry.max_attempts:
                    status, next_try = DeliveryStatus.FAILED, None
            level = logging.DEBUG if status is DeliveryStatus.DELIVERED else logging.WARNING
            log.log(level, "%s: delivery %d %s (%s)", self.channel.name, delivery.id,
                    status.value, detail)
            state.settle(delivery.id, status, attempts, self._clock(), detail, next_try)
        return bool(due)
