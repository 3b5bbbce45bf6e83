"""A real mosquitto broker on loopback for a test (port in 5400-5409), started and stopped here."""

from __future__ import annotations

import getpass
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.http_recorder import free_port


@dataclass
class Broker:
    port: int
    proc: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def start_broker(directory: Path, password_file: Path | None = None) -> Broker:
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port(range(5400, 5410))
    conf = directory / "mosquitto.conf"
    auth = (f"allow_anonymous false\npassword_file {password_file}\n" if password_file
            else "allow_anonymous true\n")
    conf.write_text(f"listener {port} 127.0.0.1\n{auth}persistence false\n"
                    f"user {getpass.getuser()}\nlog_dest stderr\n")
    log = directory / "mosquitto.log"
    proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                            stderr=open(log, "wb"))
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return Broker(port, proc, log)
        except OSError:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"mosquitto did not start: {log.read_text()}")
