"""Build and run tests/gen/trafficgen; each test runs its own copy at a unique path."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

GEN_SOURCE = Path(__file__).resolve().parent.parent / "gen" / "trafficgen.c"


def build_trafficgen(out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    binary = out_dir / "trafficgen"
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(binary), str(GEN_SOURCE), "-luring",
                    "-lpthread"], check=True)
    return binary


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class GenResult:
    sent: int
    recv: int
    pid: int
    ended: float
    # TCP sender only: bytes asked of send() and calls that returned less
    requested: int = 0
    partial: int = 0


@dataclass(frozen=True)
class Generator:
    """A copy of trafficgen at its own path: the executable a test expects to see."""

    path: Path

    @property
    def sha256(self) -> str:
        return sha256_of(self.path)

    @classmethod
    def copy(cls, source: Path, directory: Path, name: str) -> "Generator":
        directory.mkdir(parents=True, exist_ok=True)
        target = directory / name
        shutil.copy2(source, target)
        return cls(target)

    def command(self, mode: str, prefix: list[str] | None = None, **options: object) -> list[str]:
        return (prefix or []) + [str(self.path), mode] + [f"{k}={v}" for k, v in options.items()]

    def run(self, mode: str, prefix: list[str] | None = None, timeout: float = 60,
            **options: object) -> GenResult:
        done = subprocess.run(self.command(mode, prefix, **options), capture_output=True,
                              text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"{self.path.name} {mode} failed: {done.stderr.strip()}")
        return parse_result(done.stdout)

    def start_listener(self, mode: str, prefix: list[str] | None = None,
                       **options: object) -> "Listener":
        proc = subprocess.Popen(self.command(mode, prefix, **options), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        words = proc.stdout.readline().split()
        if len(words) != 2 or words[0] != "ready":
            proc.kill()
            raise RuntimeError(f"{self.path.name} {mode} did not start: {words!r} "
                               f"{proc.stderr.read() if proc.stderr else ''}")
        return Listener(proc, f"{self.path.name} {mode}", int(words[1]))


def parse_result(stdout: str) -> GenResult:
    data = json.loads(stdout.strip().splitlines()[-1])
    return GenResult(int(data["sent"]), int(data["recv"]), int(data["pid"]), time.time(),
                     int(data.get("requested", 0)), int(data.get("partial", 0)))


@dataclass
class Listener:
    proc: subprocess.Popen[str]
    label: str
    port: int          # where it listens (pass port=0 to let the kernel choose one)

    def result(self, timeout: float = 60) -> GenResult:
        out, err = self.proc.communicate(timeout=timeout)
        if self.proc.returncode != 0:
            raise RuntimeError(f"{self.label} failed: {err.strip()}")
        return parse_result(out)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
