#!/usr/bin/env python3
"""Sensor overhead, measured side by side in one run (root; run from the repository root).

Phase 1, slowdown. Wall-clock rates on a shared VM swing by 10-20% from one second to the
next, far more than the effect measured, so comparisons are paired and short: each pair runs
a workload for --slice seconds with the sensor's kernel programs attached and for --slice
seconds without (order alternating), and the slowdown is the median over --pairs pairs of
(1 - rate_with / rate_without), with a bootstrap 95% interval. The programs are the sensor's
own objects (all of them: bytes, processes, DNS), loaded by its loader with its default
configuration, and a drain thread reads
them every second as the sensor does; only attach/detach is done here, because restarting
the sensor process for every pair would take longer than the pair.

Phase 2, the sensor process. The real `netwarden sensor` runs while floods go through
loopback: its CPU seconds, its peak RSS, and lost bytes (the generators' own counts minus
what `export` attributes to them).

Workloads (tests/gen/trafficgen, one thread each in phase 1, pinned to one CPU):
  udp-tiny  16-byte UDP datagrams, sent and received back   (worst case: a hook run per 16 B)
  tcp-tiny  64-byte TCP sends with TCP_NODELAY, read back
  bulk      64 KiB TCP sends, read back

    python3 bench/sensor_overhead.py [--pairs 40] [--slice 0.3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.sensor_proc import SensorProcess  # noqa: E402
from tests.support.traffic import Generator, build_trafficgen  # noqa: E402

WORKLOADS = {"udp-tiny": ("pingpong-udp", 16), "tcp-tiny": ("pingpong-tcp", 64),
             "bulk": ("pingpong-tcp", 65536)}
FLOODS = {"udp-tiny": ("flood-udp", 16), "tcp-tiny": ("flood-tcp", 64),
          "bulk": ("flood-tcp", 65536)}
PIN_CPU = "1"


@dataclass
class Slowdown:
    workload: str
    pairs: int
    rate_without: float       # median operations per second
    rate_with: float
    slowdown_pct: float       # median of paired slowdowns
    ci95_low_pct: float
    ci95_high_pct: float


@dataclass
class FloodLoss:
    workload: str
    sent_by_generator: int
    recv_by_generator: int
    sent_attributed: int
    recv_attributed: int
    bytes_lost: int


def run_workload(gen: Generator, mode: str, size: int, seconds: float) -> dict[str, float]:
    out = subprocess.run(["taskset", "-c", PIN_CPU, str(gen.path), mode, f"seconds={seconds}",
                          f"size={size}", "host=127.0.0.1", "port=0"], check=True,
                         capture_output=True, text=True, timeout=seconds + 60).stdout
    return json.loads(out.strip().splitlines()[-1])


def bootstrap_ci(values: list[float], rounds: int = 2000) -> tuple[float, float]:
    rng = random.Random(7)
    medians = sorted(statistics.median(rng.choices(values, k=len(values)))
                     for _ in range(rounds))
    return medians[int(0.025 * rounds)], medians[int(0.975 * rounds)]


class AttachedPrograms:
    """The sensor's kernel side, loaded as the sensor loads it, drained every second."""

    def __init__(self, names: tuple[str, ...], leave_out: frozenset[str] = frozenset()) -> None:
        from netwarden.config import Config
        from netwarden.sensor import hooks
        from netwarden.sensor.collectors import FlowDrainer
        from netwarden.sensor.loader import Loader, cgroup2_root, kernel_features
        from netwarden.sensor.service import object_config
        cfg = Config().sensor
        specs = [spec for spec in hooks.OBJECTS if spec.name in names]
        features = kernel_features(hooks.OBJECTS)
        loader = Loader(features, cgroup2_root())
        self.objects = [loader.load(spec, object_config(spec, cfg),
                                    hooks.choose_hook_sets(features) if spec.hook_sets else None)
                        for spec in specs]
        self._leave_out = leave_out
        self._drainer: FlowDrainer | None = None
        if "net" in names:
            self._drainer = FlowDrainer.for_net(self.objects[0])
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain_loop, daemon=True)
        self._thread.start()

    def _drain_loop(self) -> None:
        while not self._stop.wait(1.0):
            with self._lock:
                if self._drainer:
                    self._drainer.drain()

    def set_attached(self, attached: bool) -> None:
        from netwarden.sensor.service import DETACH_LAST
        with self._lock:
            for obj in self.objects:
                if attached:
                    obj.reattach()
                    for link in [link for link in obj.links if link.name in self._leave_out]:
                        link.destroy()
                        obj.links.remove(link)
                else:
                    # The drain iterator is not a hook: it stays, as in the sensor.
                    obj.detach(keep=DETACH_LAST - {"cg_sock_release"})

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for obj in self.objects:
            obj.close()


def measure_slowdown(work: Path, binary: Path, pairs: int, slice_s: float,
                     objects: tuple[str, ...],
                     leave_out: frozenset[str] = frozenset()) -> list[Slowdown]:
    programs = AttachedPrograms(objects, leave_out)
    results = []
    try:
        for name, (mode, size) in WORKLOADS.items():
            gen = Generator.copy(binary, work / "exe", f"pair-{name}")
            ratios, with_rates, without_rates = [], [], []
            for i in range(pairs):
                rates = {}
                for attached in ((True, False) if i % 2 else (False, True)):
                    programs.set_attached(attached)
                    r = run_workload(gen, mode, size, slice_s)
                    rates[attached] = r["sends"] / r["seconds"]
                with_rates.append(rates[True])
                without_rates.append(rates[False])
                ratios.append(100.0 * (1 - rates[True] / rates[False]))
            low, high = bootstrap_ci(ratios)
            results.append(Slowdown(name, pairs, statistics.median(without_rates),
                                    statistics.median(with_rates), statistics.median(ratios),
                                    low, high))
    finally:
        programs.close()
    return results


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure_sensor(work: Path, binary: Path, seconds: int) -> dict[str, object]:
    sensor = SensorProcess.write_config(work / "sensor", write_interval_s=10,
                                        drain_interval_s=1.0)
    sensor.start()
    pid = sensor.proc.pid  # type: ignore[union-attr]
    start_cpu = cpu_seconds(pid)
    counts = {}
    try:
        for name, (mode, size) in FLOODS.items():
            gen = Generator.copy(binary, work / "exe", f"flood-{name}")
            out = subprocess.run([str(gen.path), mode, "host=127.0.0.1", "port=0",
                                  f"seconds={seconds}", f"size={size}"], check=True,
                                 capture_output=True, text=True, timeout=seconds + 60).stdout
            counts[name] = (gen, json.loads(out.strip().splitlines()[-1]))
        used_cpu = cpu_seconds(pid) - start_cpu
        rss = peak_rss_mib(pid)
    finally:
        sensor.stop()
    losses = []
    for name, (gen, result) in counts.items():
        totals = sensor.totals(gen.path)
        losses.append(FloodLoss(name, int(result["sent"]), int(result["recv"]), totals.sent,
                                totals.recv, (int(result["sent"]) - totals.sent)
                                + (int(result["recv"]) - totals.recv)))
    flood_seconds = seconds * len(FLOODS)
    return {"sensor_cpu_seconds": round(used_cpu, 3),
            "sensor_cpu_share_pct": round(100 * used_cpu / flood_seconds, 2),
            "sensor_peak_rss_mib": round(rss, 1), "floods": [asdict(x) for x in losses],
            "flood_seconds_each": seconds}


def render(report: dict[str, object]) -> str:
    lines = [f"kernel {report['kernel']}, {report['cpus']} CPUs; slowdown: median of "
             f"{report['pairs']} paired {report['slice_s']} s runs (with vs without the "
             f"sensor's programs: {report['objects']}"
             + (f", left out: {report['left_out']}" if report["left_out"] else "")
             + f"), workload pinned to CPU {PIN_CPU}",
             f"{'workload':10} {'ops/s without':>14} {'ops/s with':>11} {'slowdown':>9} "
             f"{'95% interval':>17}"]
    for s in report["slowdown"]:  # type: ignore[attr-defined]
        lines.append(f"{s['workload']:10} {s['rate_without']:14.0f} {s['rate_with']:11.0f} "
                     f"{s['slowdown_pct']:8.1f}% [{s['ci95_low_pct']:5.1f}%, "
                     f"{s['ci95_high_pct']:5.1f}%]")
    sensor = report["sensor"]
    lines.append(f"sensor process over {len(sensor['floods'])} floods of "  # type: ignore[index]
                 f"{sensor['flood_seconds_each']} s: {sensor['sensor_cpu_seconds']} CPU s "  # type: ignore[index]
                 f"({sensor['sensor_cpu_share_pct']}% of one CPU), peak RSS "  # type: ignore[index]
                 f"{sensor['sensor_peak_rss_mib']} MiB")  # type: ignore[index]
    for f in sensor["floods"]:  # type: ignore[index]
        lines.append(f"  {f['workload']:9} generator sent {f['sent_by_generator']} recv "
                     f"{f['recv_by_generator']}; attributed sent {f['sent_attributed']} recv "
                     f"{f['recv_attributed']}; lost {f['bytes_lost']} bytes")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--slice", type=float, default=0.3, help="seconds per run")
    parser.add_argument("--flood-seconds", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--objects", default="net,exec,dns",
                        help="which BPF objects phase 1 attaches (to see what each one costs)")
    parser.add_argument("--leave-out", default="", metavar="PROGRAMS",
                        help="programs phase 1 keeps detached, comma-separated (to see what "
                             "one costs; leaving out a byte hook makes the sensor miscount)")
    args = parser.parse_args()
    leave_out = frozenset(p.strip() for p in args.leave_out.split(",") if p.strip())
    objects = tuple(o.strip() for o in args.objects.split(",") if o.strip())
    known = {"net", "exec", "dns"}
    if not objects or not set(objects) <= known:
        parser.error(f"--objects: a comma-separated subset of {', '.join(sorted(known))}")
    if os.geteuid() != 0:
        print("bench: needs root (it loads BPF programs)", file=sys.stderr)
        return 77
    work = Path(tempfile.mkdtemp(prefix="nwbench-"))
    try:
        binary = build_trafficgen(work / "build")
        slowdown = measure_slowdown(work, binary, args.pairs, args.slice, objects, leave_out)
        sensor = measure_sensor(work, binary, args.flood_seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {"kernel": os.uname().release, "cpus": os.cpu_count(), "pairs": args.pairs,
              "slice_s": args.slice, "objects": ",".join(objects),
              "left_out": ",".join(sorted(leave_out)),
              "slowdown": [asdict(s) for s in slowdown], "sensor": sensor}
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
