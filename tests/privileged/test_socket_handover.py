"""A socket that changes hands is attributed to each program for what it moved.

The sensor keeps a socket's counts in the socket under the owner it saw first, and checks the
owner on every call (tgid and address space): a socket inherited across exec, where the pid
stays and the executable changes, and one inherited by a forked child that execs another
program, must both show up under each program for its own bytes. Reads on such a socket are
claimed from sequence numbers, so what the first owner read before the handover must stay
the first owner's.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sensor_proc import SensorProcess

TOLERANCE = 0.05
FIRST_READ, SECOND_READ, SECOND_SEND = 300_000, 500_000, 200_000

#: argv: host port then_exec(path or "-") mode ("exec" | "fork"). Reads FIRST_READ bytes,
#: then hands the socket to then_exec: in place (exec) or in a forked child (fork).
FIRST_OWNER = """
import os, socket, sys
host, port, then, mode = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection((host, port))
got = 0
while got < {first}:
    got += len(s.recv(65536))
s.set_inheritable(True)
argv = [then, "-c", open(os.environ["NW_SECOND_OWNER"]).read(), str(s.fileno())]
if mode == "exec":
    os.execv(then, argv)
pid = os.fork()
if pid == 0:
    os.execv(then, argv)
s.close()
os.waitpid(pid, 0)
""".format(first=FIRST_READ)

SECOND_OWNER = """
import socket, sys
s = socket.socket(fileno=int(sys.argv[1]))
got = 0
while got < {second}:
    got += len(s.recv(65536))
s.sendall(b"r" * {send})
s.shutdown(socket.SHUT_WR)
while s.recv(65536):
    pass
""".format(second=SECOND_READ, send=SECOND_SEND)


def within(measured: int, expected: int) -> bool:
    return abs(measured - expected) <= TOLERANCE * expected


def copy_of_python(directory: Path, name: str) -> Path:
    """A Python interpreter at a path of its own, so its rows can be told apart."""
    path = directory / name
    shutil.copy2(os.path.realpath(sys.executable), path)
    return path


class Server:
    """Sends FIRST_READ + SECOND_READ bytes to one client, then reads until it closes."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.received = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn:
            conn.sendall(b"x" * FIRST_READ)
            time.sleep(0.5)                    # the first owner reads it all before the rest
            conn.sendall(b"y" * SECOND_READ)
            while data := conn.recv(65536):
                self.received += len(data)

    def close(self) -> None:
        self.thread.join(timeout=30)
        self.listener.close()


@pytest.fixture(scope="module", params=["full", "compat"])
def any_mode_sensor(request: pytest.FixtureRequest, workdir: Path,
                    sensor: SensorProcess) -> Iterator[SensorProcess]:
    """The session's sensor (full BPF mode here), and one in compat mode (the programs for
    kernels before 5.12, which count every socket through the flow tables)."""
    if request.param == "full":
        yield sensor
        return
    compat = SensorProcess.write_config(workdir / "handover-compat",
                                        extra='bpf_mode = "compat"\n')
    compat.start()
    yield compat
    compat.stop()


@pytest.mark.parametrize("mode", ["exec", "fork"])
def test_each_owner_gets_its_own_bytes(mode: str, any_mode_sensor: SensorProcess,
                                       tmp_path: Path):
    sensor = any_mode_sensor
    first, second = copy_of_python(tmp_path, f"first-{mode}"), \
        copy_of_python(tmp_path, f"second-{mode}")
    script = tmp_path / "second_owner.py"
    script.write_text(SECOND_OWNER)
    server = Server()
    try:
        subprocess.run([str(first), "-c", FIRST_OWNER, "127.0.0.1", str(server.port),
                        str(second), mode], check=True, timeout=60,
                       env=dict(os.environ, NW_SECOND_OWNER=str(script)))
    finally:
        server.close()
    ended = time.time()
    assert server.received == SECOND_SEND
    one = sensor.settled_totals(first, ended)
    two = sensor.settled_totals(second, ended)
    assert {r["sha256"] for r in one.rows} == {hashlib.sha256(first.read_bytes()).hexdigest()}
    assert within(one.recv, FIRST_READ) and one.sent == 0, one
    assert within(two.recv, SECOND_READ) and within(two.sent, SECOND_SEND), two
