"""A private D-Bus session bus for a test: a real dbus-daemon on a socket in a temp dir.

The bus is a session bus (``<type>session</type>``, the policy of Debian's session.conf) but
without the standard service directories: otherwise the daemon would auto-start an installed
notification daemon (dunst, without a display) when a test has none on purpose.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


@dataclass
class SessionBus:
    address: str
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def start_session_bus(directory: Path) -> SessionBus:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "session.conf"
    config.write_text(_CONFIG.format(socket=directory / "bus"))
    proc = subprocess.Popen(
        ["dbus-daemon", f"--config-file={config}", "--nofork", "--nopidfile",
         "--print-address=1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None
    address = proc.stdout.readline().decode().strip()
    if not address:
        proc.kill()
        error = proc.stderr.read().decode() if proc.stderr else ""
        raise RuntimeError(f"dbus-daemon did not start: {error}")
    return SessionBus(address, proc)
