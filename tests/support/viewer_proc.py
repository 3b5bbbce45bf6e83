"""Run a viewer the way a person would: unprivileged, in a real terminal or as a server.

Under root (CI) the viewers refuse to run as they are, so they are started with
`--user nobody` and their database is made readable to that user; otherwise they run as the
current user. `tmux` gives the TUI a real terminal to draw in and be read from.
"""

from __future__ import annotations

import functools
import itertools
import os
import pwd
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import stop_process

REPO = Path(__file__).resolve().parent.parent.parent
VIEWER_USER = "nobody"
#: The web viewer's tests listen on ports from here up (100 of them). Another checkout that
#: runs the suite at the same time on this machine moves its own with this variable.
VIEWER_PORT_BASE = int(os.environ.get("NETWARDEN_TEST_VIEWER_PORTS", "5200"))


def viewer_port(offset: int) -> int:
    """Port `offset` (0-99) of the viewers' test range."""
    if not 0 <= offset < 100:
        raise ValueError(f"viewer test port offset {offset} is outside 0-99")
    return VIEWER_PORT_BASE + offset


def as_root() -> bool:
    return os.geteuid() == 0


@functools.lru_cache(maxsize=1)
def _viewer_user_can_run_us() -> None:
    """Under root the viewers run as nobody: the interpreter and the code must be theirs too."""
    probe = subprocess.run(["runuser", "-u", VIEWER_USER, "--", sys.executable, "-c",
                            "import sys; sys.path.insert(0, sys.argv[1]); import netwarden.cli",
                            str(REPO)], capture_output=True, text=True, cwd="/")
    if probe.returncode != 0:
        raise AssertionError(
            f"the viewers' tests run the viewers as '{VIEWER_USER}' (they refuse root), who "
            f"cannot run {sys.executable} on {REPO}: {probe.stderr.strip()[-300:]}. Run the "
            "suite with a Python and a checkout that user may read (scripts/bootstrap test "
            "makes .venv from /usr/bin/python3).")


def viewer_args(*args: str) -> list[str]:
    """`python -m netwarden ARGS`, with `--user nobody` when started as root."""
    extra = []
    if as_root():
        _viewer_user_can_run_us()
        extra = ["--user", VIEWER_USER]
    return [sys.executable, "-m", "netwarden", *args, *extra]


@contextmanager
def viewer_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory the viewer's user may read and create SQLite's -shm file in."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        if as_root():
            os.chmod(path, 0o755)
            entry = pwd.getpwnam(VIEWER_USER)
            os.chown(path, entry.pw_uid, entry.pw_gid)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def share(db: Path) -> None:
    """Let the viewer's user read a database written by the tests (as the sensor's group would)."""
    for suffix in ("", "-wal", "-shm"):
        target = Path(str(db) + suffix)
        if target.exists():
            os.chmod(target, 0o644)


def wait_until(check: Callable[[], object], timeout: float, what: str,
               last: Callable[[], str] = lambda: "") -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last seen:\n{last()}")
        time.sleep(0.05)


@dataclass
class TmuxPane:
    """One tmux server (its own socket) with one session running one command."""

    socket: str
    session: str = "nw"

    def tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True,
                              text=True, check=False)
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def start(self, command: list[str], width: int = 80, height: int = 24,
              env: dict[str, str] | None = None) -> None:
        exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        line = (f"cd {shlex.quote(str(REPO))} && env {exports} TERM=xterm-256color "
                f"{shlex.join(command)}; echo EXITED $?; sleep 600")
        # No status line: the pane is the whole width x height terminal.
        self.tmux("-f", "/dev/null", "new-session", "-d", "-s", self.session, "-x", str(width),
                  "-y", str(height), line, ";", "set-option", "-t", self.session, "status", "off")

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", self.session, check=False)

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", self.session, key)
            time.sleep(0.05)

    def wait_for(self, text: str, timeout: float = 20, unless: str = "") -> str:
        """The screen once it shows `text` (and not `unless`)."""
        def seen() -> str:
            screen = self.screen()
            return screen if text in screen and not (unless and unless in screen) else ""
        return str(wait_until(seen, timeout, repr(text), self.screen))

    def resize(self, width: int, height: int) -> None:
        self.tmux("resize-window", "-t", self.session, "-x", str(width), "-y", str(height))

    def kill(self) -> None:
        self.tmux("kill-server", check=False)


_PANES = itertools.count()


@contextmanager
def tmux_pane(name: str) -> Iterator[TmuxPane]:
    # A fresh socket each time: a server just killed may still hold its old name.
    pane = TmuxPane(f"nwv-{name}-{os.getpid()}-{next(_PANES)}")
    try:
        yield pane
    finally:
        pane.kill()


@dataclass
class DashServer:
    """`netwarden dash` as a subprocess on a port of the viewers' test range (viewer_port)."""

    proc: subprocess.Popen[str]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> DashServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        stop_process(self.proc)


def start_dash(db: Path | str, port: int, directory: Path, config: str = "",
               extra: tuple[str, ...] = ()) -> DashServer:
    config_path = directory / f"dash-{port}.toml"
    config_path.write_text(config)
    os.chmod(config_path, 0o644)
    log = directory / f"dash-{port}.log"
    out = open(log, "w")
    proc = subprocess.Popen(
        viewer_args("dash", "--db", str(db), "--config", str(config_path), "--port", str(port),
                    *extra),
        stdout=out, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env=dict(os.environ, TZ="UTC", PYTHONPATH=str(REPO)))
    server = DashServer(proc, port, log)

    def ready() -> bool:
        if proc.poll() is not None:
            raise AssertionError(f"dash exited {proc.returncode}: {log.read_text()}")
        return "serving http" in log.read_text()
    try:
        wait_until(ready, 60, "netwarden dash to serve", log.read_text)
    except BaseException:
        server.stop()
        raise
    return server
