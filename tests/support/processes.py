"""Stopping a test's child process: politely first, then for sure."""

from __future__ import annotations

import subprocess


def stop_process(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM, wait up to ``timeout`` s, then SIGKILL; returns once it is gone."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
