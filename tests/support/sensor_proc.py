"""Run the real sensor as a subprocess (`python -m netwarden sensor`) and read what it wrote."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
#: Seconds the sensor gets to load and say "ready". The kernel matrix runs kernels in software
#: emulation, where 5.10's verifier alone can take longer than the 30 s a real machine needs.
START_TIMEOUT_S = 120.0 if os.environ.get("NETWARDEN_KMATRIX") else 30.0


def netwarden_cmd(*args: str, command: tuple[str, ...] = ()) -> list[str]:
    """This checkout's `netwarden` (python -m, on PYTHONPATH) or, given, an installed one."""
    return [*command, *args] if command else [sys.executable, "-m", "netwarden", *args]


def netwarden_env(command: tuple[str, ...] = ()) -> dict[str, str]:
    """An installed `netwarden` runs without this checkout on its path, so it cannot mask it."""
    if command:
        return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return dict(os.environ, PYTHONPATH=str(REPO))


def netwarden(*args: str, check: bool = True, timeout: float = 60,
              command: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(netwarden_cmd(*args, command=command), capture_output=True,
                          text=True, env=netwarden_env(command), timeout=timeout,
                          cwd="/" if command else None)
    if check and done.returncode != 0:
        raise RuntimeError(f"netwarden {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


@dataclass(frozen=True)
class Totals:
    sent: int
    recv: int
    rows: tuple[dict[str, object], ...] = field(default=(), compare=False)


@dataclass
class SensorProcess:
    db: Path
    config: Path
    log: Path
    write_interval_s: float
    proc: subprocess.Popen[bytes] | None = None
    #: Runs before the sensor's command: a sandbox (tests/support/units.sandbox_prefix).
    prefix: tuple[str, ...] = ()
    #: An installed `netwarden` to run (e.g. a wheel's venv); empty: this checkout's.
    command: tuple[str, ...] = ()
    #: More arguments for `netwarden sensor` (e.g. --keep-pinned).
    args: tuple[str, ...] = ()

    @classmethod
    def write_config(cls, directory: Path, write_interval_s: int = 1,
                     drain_interval_s: float = 0.25, extra: str = "") -> "SensorProcess":
        directory.mkdir(parents=True, exist_ok=True)
        config = directory / "config.toml"
        config.write_text(f"[sensor]\nwrite_interval_s = {write_interval_s}\n"
                          f"drain_interval_s = {drain_interval_s}\n{extra}")
        return cls(db=directory / "netwarden.db", config=config, log=directory / "sensor.log",
                   write_interval_s=write_interval_s)

    def start(self, timeout: float = START_TIMEOUT_S) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        log = open(self.log, "ab")
        self.proc = subprocess.Popen(
            [*self.prefix, *netwarden_cmd("sensor", "--config", str(self.config), "--db",
                                          str(self.db), *self.args, command=self.command)],
            stdout=log, stderr=subprocess.STDOUT, env=netwarden_env(self.command),
            cwd="/" if self.command else None)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if b" ready" in self.log.read_bytes()[offset:]:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"sensor exited {self.proc.returncode}: "
                                   f"{self.log.read_text()[-2000:]}")
            time.sleep(0.1)
        raise RuntimeError("sensor did not become ready: " + self.log.read_text()[-2000:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def export(self, since: float = 0) -> list[dict[str, object]]:
        done = netwarden("export", "--db", str(self.db), "--format", "jsonl",
                         "--since", str(int(since)), command=self.command)
        return [json.loads(line) for line in done.stdout.splitlines() if line]

    def events(self, since: float = 0) -> list[dict[str, object]]:
        done = netwarden("events", "--db", str(self.db), "--since", str(since),
                         command=self.command)
        return [json.loads(line) for line in done.stdout.splitlines() if line]

    def totals(self, exe: Path | str, since: float = 0) -> Totals:
        rows = tuple(r for r in self.export(since) if r["exe"] == str(exe))
        return Totals(sum(int(r["sent"]) for r in rows), sum(int(r["recv"]) for r in rows), rows)

    def settled_totals(self, exe: Path | str, ended: float, since: float = 0,
                       timeout: float = 15) -> Totals:
        """Totals once every window that could hold the traffic has been written.

        A window closes at the first drain after its end and is then written; waiting two
        windows past the traffic's end covers it. Then read until two reads agree.
        """
        settle = ended + 2 * self.write_interval_s + 0.5
        time.sleep(max(0.0, settle - time.time()))
        deadline = time.time() + timeout
        previous = self.totals(exe, since)
        while time.time() < deadline:
            time.sleep(self.write_interval_s)
            current = self.totals(exe, since)
            if current == previous:
                return current
            previous = current
        return previous
