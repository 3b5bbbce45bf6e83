"""Phase 3 of bench/sensor_overhead.py: what users run, in alternating blocks.

Phase 1 attaches the sensor's programs in short paired slices, which settles a few points but
is not the process a user installs. Here each round runs a workload for --block-seconds three
times, in rotating order: with no monitor, with the real `netwarden sensor` process (started
before the block with its default settings, stopped after it) and with NetHogs (`nethogs -t -a
lo`: trace mode on the loopback interface, the tool a user would otherwise pick). Each monitor
gets a few seconds after it is ready before the block starts, so its start-up work (the
sensor's first walk of /proc and first hashes) is not what is measured. A monitor's slowdown is the
median over rounds of (1 - rate_with / rate_without) within the round, with a bootstrap 95%
interval. Blocks are seconds long, so they are coarser than phase 1's slices: read both.
The sensor's peak RSS (VmHWM) is taken at the end of each of its blocks; the largest is kept.
"""

from __future__ import annotations

import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests.support.sensor_proc import SensorProcess
from tests.support.traffic import Generator

MONITORS = ("sensor", "nethogs")
#: NetHogs opens its capture and reads /proc before it sees packets; the sensor, once ready,
#: still walks /proc and hashes what runs. A block starts after this.
SETTLE_S = 2.0


@dataclass
class BlockSlowdown:
    workload: str
    monitor: str
    rounds: int
    rate_without: float       # median operations per second
    rate_with: float
    slowdown_pct: float
    ci95_low_pct: float
    ci95_high_pct: float


class SensorMonitor:
    """`netwarden sensor` with the default write and drain intervals, one store throughout."""

    name = "sensor"

    def __init__(self, work: Path) -> None:
        from netwarden.config import SensorConfig
        defaults = SensorConfig()
        self._sensor = SensorProcess.write_config(
            work / "process-blocks-sensor", write_interval_s=int(defaults.write_interval_s),
            drain_interval_s=defaults.drain_interval_s)
        self.peak_rss_mib = 0.0

    def start(self) -> None:
        self._sensor.start()
        time.sleep(SETTLE_S)

    def stop(self) -> None:
        proc = self._sensor.proc
        assert proc is not None
        self.peak_rss_mib = max(self.peak_rss_mib, peak_rss_mib(proc.pid))
        status = self._sensor.stop()
        if status != 0:
            raise RuntimeError(f"the sensor exited {status}: see {self._sensor.log}")


class NethogsMonitor:
    name = "nethogs"

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def missing() -> str:
        return "" if shutil.which("nethogs") else "nethogs is not installed (apt install nethogs)"

    def start(self) -> None:
        self._proc = subprocess.Popen(["nethogs", "-t", "-a", "-d", "1", "lo"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(SETTLE_S)
        if self._proc.poll() is not None:
            raise RuntimeError(f"nethogs exited {self._proc.returncode} at start")

    def stop(self) -> None:
        assert self._proc is not None
        self._proc.send_signal(signal.SIGTERM)
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


Monitor = SensorMonitor | NethogsMonitor
RunBlock = Callable[[Generator, str, int, float], dict[str, float]]


def measure_blocks(work: Path, binary: Path, rounds: int, block_s: float,
                   monitors: list[Monitor], workloads: dict[str, tuple[str, int]],
                   run_workload: RunBlock,
                   bootstrap_ci: Callable[[list[float]], tuple[float, float]],
                   progress: Callable[[str], None] = print) -> list[BlockSlowdown]:
    """Per workload and monitor, the slowdown of blocks with it against blocks without."""
    results = []
    names = ["without", *(m.name for m in monitors)]
    by_name = {m.name: m for m in monitors}
    for workload, (mode, size) in workloads.items():
        gen = Generator.copy(binary, work / "exe", f"block-{workload}")
        rates: dict[str, list[float]] = {name: [] for name in names}
        for i in range(rounds):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                monitor = by_name.get(name)
                if monitor is not None:
                    monitor.start()
                try:
                    r = run_workload(gen, mode, size, block_s)
                finally:
                    if monitor is not None:
                        monitor.stop()
                rates[name].append(r["sends"] / r["seconds"])
            progress(f"  {workload}: round {i + 1}/{rounds}")
        for monitor in monitors:
            ratios = [100.0 * (1 - w / wo) for w, wo in
                      zip(rates[monitor.name], rates["without"], strict=True)]
            low, high = bootstrap_ci(ratios)
            results.append(BlockSlowdown(workload, monitor.name, rounds,
                                         statistics.median(rates["without"]),
                                         statistics.median(rates[monitor.name]),
                                         statistics.median(ratios), low, high))
    return results


def render_blocks(report: dict[str, object]) -> list[str]:
    """The phase's lines of the bench's printout."""
    blocks = report["process_blocks"]
    assert isinstance(blocks, dict)
    monitors = list(blocks["monitors"])
    lines = [f"phase 3, what users run: median of {blocks['rounds']} rounds of "
             f"{blocks['block_s']} s blocks, each monitor against none in the same round"
             + (f"; {blocks['skipped']}" if blocks.get("skipped") else "")]
    lines.append(f"{'workload':16} {'ops/s without':>14} "
                 + " ".join(f"{name:>8} {'95% interval':>15}" for name in monitors))
    rows: dict[str, dict[str, dict[str, float]]] = {}
    for r in blocks["slowdown"]:
        rows.setdefault(r["workload"], {})[r["monitor"]] = r
    for workload, per in rows.items():
        first = next(iter(per.values()))
        cells = [f"{per[m]['slowdown_pct']:7.1f}% [{per[m]['ci95_low_pct']:5.1f}%, "
                 f"{per[m]['ci95_high_pct']:5.1f}%]" for m in monitors]
        lines.append(f"{workload:16} {first['rate_without']:14.0f} " + " ".join(cells))
    if blocks.get("sensor_peak_rss_mib") is not None:
        lines.append(f"sensor process peak RSS over its blocks: "
                     f"{blocks['sensor_peak_rss_mib']:.1f} MiB")
    return lines
