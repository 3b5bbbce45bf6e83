"""A private D-Bus session bus for a test: a real dbus-daemon on a socket in a temp dir."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass
class SessionBus:
    address: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def start_session_bus(directory: Path, prefix: list[str] | None = None) -> SessionBus:
    """``prefix`` runs the daemon as another user (e.g. setpriv ...)."""
    directory.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        (prefix or []) + ["dbus-daemon", "--session", "--nofork", "--nopidfile",
                          f"--address=unix:path={directory / 'bus'}", "--print-address=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    address = proc.stdout.readline().decode().strip()
    if not address:
        proc.kill()
        error = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"dbus-daemon did not start: {error}")
    return SessionBus(address, proc)
