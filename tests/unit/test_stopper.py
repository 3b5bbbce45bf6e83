"""The stop request must survive signals that arrive while the main thread waits (the
deadlock Event.set() from a handler caused: a sensor that ignored SIGTERM)."""

from __future__ import annotations

import os
import signal
import threading
import time

from netwarden.stopper import Stopper


def test_many_signals_while_waiting():
    stop = Stopper()
    old = signal.signal(signal.SIGUSR1, stop.request)
    try:
        def pelt() -> None:
            for _ in range(200):
                os.kill(os.getpid(), signal.SIGUSR1)
        thread = threading.Thread(target=pelt)
        started = time.monotonic()
        thread.start()
        assert stop.wait(10.0) is True
        thread.join()
        assert time.monotonic() - started < 5
    finally:
        signal.signal(signal.SIGUSR1, old)
        stop.close()


def test_wait_times_out_and_other_threads_wake():
    stop = Stopper()
    assert stop.wait(0.01) is False
    woke = []
    waiter = threading.Thread(target=lambda: woke.append(stop.wait(10)))
    waiter.start()
    stop.request()
    waiter.join(5)
    assert woke == [True] and stop.is_set()
    stop.close()
