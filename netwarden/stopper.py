"""A stop request that signal handlers can raise safely.

A Python signal handler runs in the main thread between bytecodes, possibly while that thread
holds a lock inside threading.Event.wait(); calling Event.set() from the handler then
deadlocks (seen: a sensor that ignored SIGTERM). Here the handler only sets a flag and writes
a byte to a pipe; waiters sleep in select() on the pipe, which no lock guards.
"""

from __future__ import annotations

import os
import select


class Stopper:
    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._stopped = False

    def request(self, *_signal_args: object) -> None:
        """Ask everything waiting on this to stop (usable as a signal handler)."""
        self._stopped = True
        try:
            os.write(self._write, b"x")
        except BlockingIOError:
            pass  # the pipe is already full of stop requests

    def is_set(self) -> bool:
        return self._stopped

    def wait(self, timeout: float | None) -> bool:
        """Sleep until stopped or ``timeout`` passes; True if stopped. Any thread may wait."""
        if not self._stopped:
            select.select([self._read], [], [], timeout)
        return self._stopped

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)
