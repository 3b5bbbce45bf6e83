"""One delivery attempt's outcome: delivered, retried with backoff, or failed for good."""

from __future__ import annotations

from netwarden.notify.delivery import DeliveryError, RetryPolicy, attempt
from netwarden.notify.notices import render_event
from netwarden.store.notifier_state import Delivery, DeliveryStatus

NOTICE = render_event(1, 0, "new_executable", {"path": "/bin/x", "name": "x"})


class Channel:
    name = "test"

    def __init__(self, error: DeliveryError | None, retry: RetryPolicy) -> None:
        self.error, self.retry = error, retry

    def deliver(self, notice, delivery_id):  # type: ignore[no-untyped-def]
        if self.error:
            raise self.error
        return f"ok {delivery_id} {notice.name}"

    def close(self) -> None:
        pass


def row(attempts: int) -> Delivery:
    assert NOTICE is not None
    return Delivery(7, 0, "test", NOTICE.kind, NOTICE.title, NOTICE.to_json(),
                    DeliveryStatus.PENDING, attempts, 0, 0, "")


def test_backoff_doubles_and_is_capped():
    policy = RetryPolicy(10, 2.0)
    assert [policy.delay(n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert policy.delay(20) == 600.0


def test_outcomes():
    policy = RetryPolicy(3, 2.0)
    assert attempt(Channel(None, policy), row(0), 100) == (DeliveryStatus.DELIVERED, 1,
                                                             "ok 7 x", None)
    assert attempt(Channel(DeliveryError("HTTP 500"), policy), row(1), 100) == (
        DeliveryStatus.PENDING, 2, "attempt 2 failed: HTTP 500", 104.0)
    assert attempt(Channel(DeliveryError("HTTP 500"), policy), row(2), 100) == (
        DeliveryStatus.FAILED, 3, "gave up after 3 attempts: HTTP 500", None)
    assert attempt(Channel(DeliveryError("HTTP 404", permanent=True), policy), row(0), 100) == (
        DeliveryStatus.FAILED, 1, "permanent error: HTTP 404", None)
