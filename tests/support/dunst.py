"""Debian's dunst, a real notification daemon, under Xvfb on a test's private session bus.

A dunst rule runs a script for every notification from app "netwarden"; the script appends
what dunst received (app, urgency, summary, and the body as sent, before markup is parsed)
to a file the test reads; dunst's log says whether it could parse the markup.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

_RECORD = """#!/bin/sh
body=$(printf '%s' "$DUNST_BODY" | tr '\\n' '|')
printf '%s\\t%s\\t%s\\t%s\\n' "$DUNST_APP_NAME" "$DUNST_URGENCY" "$DUNST_SUMMARY" "$body" \\
    >> "{out}"
"""


@dataclass
class Dunst:
    display: str
    out: Path
    procs: list[subprocess.Popen[bytes]]

    def received(self) -> list[tuple[str, ...]]:
        if not self.out.exists():
            return []
        return [tuple(line.split("\t")) for line in self.out.read_text().splitlines()]

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                proc.wait(timeout=10)


def start_xvfb() -> tuple[subprocess.Popen[bytes], str]:
    """Xvfb on a display it picks itself (-displayfd), so parallel runs never collide."""
    read, write = os.pipe()
    proc = subprocess.Popen(["Xvfb", "-displayfd", str(write), "-nolisten", "tcp",
                             "-screen", "0", "800x600x24"], pass_fds=(write,),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write)
    with os.fdopen(read) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        raise RuntimeError("Xvfb did not start")
    return proc, f":{number}"


def start_dunst(directory: Path, bus_address: str) -> Dunst:
    directory.mkdir(parents=True, exist_ok=True)
    out = directory / "dunst-received.tsv"
    script = directory / "record.sh"
    script.write_text(_RECORD.format(out=out))
    script.chmod(0o755)
    config = directory / "dunstrc"
    config.write_text("[global]\n    font = Monospace 8\n    markup = full\n"
                      f"[record]\n    appname = netwarden\n    script = {script}\n")
    xvfb, display = start_xvfb()
    env = dict(os.environ, DISPLAY=display, DBUS_SESSION_BUS_ADDRESS=bus_address)
    env.pop("WAYLAND_DISPLAY", None)
    dunst = subprocess.Popen(["dunst", "-config", str(config)], env=env,
                             stdout=subprocess.DEVNULL, stderr=open(directory / "dunst.log", "wb"))
    running = Dunst(display, out, [xvfb, dunst])
    if not _owns_the_name(bus_address, dunst):
        running.stop()
        raise RuntimeError("dunst did not start: " + (directory / "dunst.log").read_text())
    return running


def _owns_the_name(bus_address: str, dunst: subprocess.Popen[bytes]) -> bool:
    from jeepney.bus_messages import message_bus
    from jeepney.io.blocking import open_dbus_connection
    deadline = time.time() + 15
    with open_dbus_connection(bus_address) as conn:
        while time.time() < deadline and dunst.poll() is None:
            reply = conn.send_and_get_reply(
                message_bus.NameHasOwner("org.freedesktop.Notifications"))
            if reply.body[0]:
                return True
            time.sleep(0.1)
    return False
