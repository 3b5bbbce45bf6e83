#!/usr/bin/env python3
"""Sensor overhead, measured side by side in one run (root; run from the repository root).

Phase 1, slowdown. Wall-clock rates on a shared VM swing by 10-20% from one second to the
next, far more than the effect measured, so comparisons are paired and short: each round
runs a workload for --slice seconds without any program and once with each variant's
programs attached (--variants, order rotating), and a variant's slowdown is the median over
--pairs rounds of (1 - rate_with / rate_without), with a bootstrap 95% interval. The
variants are the sensor's own objects (bytes, processes and, where the kernel needs it, the
DNS packet program), loaded by its loader, with a drain thread reading them every second as
the sensor does; only attach/detach is done here, because restarting the sensor process for
every pair would take longer than the pair:
  sensor  the default configuration (packet_hooks = auto)
  always  packet_hooks = always: per-packet hooks, DNS from packets
  core    without reading system call arguments: no DNS names, no raw/ping destinations
  scan    the sensor's programs plus scan.bpf.o ([scan] enabled): against `sensor` in the
          same run, what port-scan detection costs
  floor   two empty programs on the two tracepoints the byte hooks use (bench/floor.bpf.c):
          what any sensor built on per-call hooks costs at least on this machine

Phase 2, the sensor process. The real `netwarden sensor` runs while floods go through
loopback: its CPU seconds, its peak RSS, and lost bytes (the generators' own counts minus
what `export` attributes to them).

Phase 3, what users run (--blocks N): the real `netwarden sensor` process and NetHogs, each
started before and stopped after a block of --block-seconds, against blocks with nothing, in
rotating order within each round (bench/process_blocks.py); and the sensor's peak RSS.

Workloads (tests/gen/trafficgen, one thread each in phases 1 and 3, pinned to one CPU):
  udp-unconnected  16-byte UDP datagrams by sendto() on an unconnected socket, received back
            with recv() (the worst case: the peer is found per call, not per socket)
  udp-tiny  16-byte UDP datagrams on a connected socket, sent and received back
  tcp-tiny  64-byte TCP sends with TCP_NODELAY, read back
  bulk      64 KiB TCP sends, read back
  connections  loopback TCP connections one after another (connect, accept, reset); not in
            the default set: it measures what runs per connection (scan detection's sock_ops)

    python3 bench/sensor_overhead.py [--pairs 40] [--slice 0.3] [--variants sensor,floor]
                                     [--workloads udp-unconnected,udp-tiny,tcp-tiny,bulk]
                                     [--json out.json]
                                     [--blocks 12] [--block-seconds 3] [--monitors sensor,nethogs]
    python3 bench/sensor_overhead.py --variants sensor,scan --slowdown-only \
        --workloads udp-unconnected,udp-tiny,tcp-tiny,bulk,connections   # scan detection
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

from bench.process_blocks import (  # noqa: E402
    MONITORS, NethogsMonitor, SensorMonitor, measure_blocks, peak_rss_mib, render_blocks,
)
from tests.support.sensor_proc import SensorProcess  # noqa: E402
from tests.support.traffic import Generator, build_trafficgen  # noqa: E402

WORKLOADS = {"udp-unconnected": ("pingpong-udp-unconnected", 16),
             "udp-tiny": ("pingpong-udp", 16), "tcp-tiny": ("pingpong-tcp", 64),
             "bulk": ("pingpong-tcp", 65536), "connections": ("connect-loop", 0)}
#: Phase 1's workloads unless --workloads names others ("connections" is where the per-
#: connection hooks of scan detection run: compare --variants sensor,scan on it).
DEFAULT_WORKLOADS = ("udp-unconnected", "udp-tiny", "tcp-tiny", "bulk")
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


#: What phase 1 can compare with running nothing, side by side (--variants):
VARIANTS = {
    "sensor": "the sensor's programs as it loads them by default (packet_hooks = auto)",
    "always": "the sensor's programs with packet_hooks = always (per-packet hooks, DNS from "
              "packets): how the sensor ran before per-call reading of system call arguments",
    "core": "the sensor without reading system call arguments or DNS (the core issue's "
            "sensor; raw/ping destinations and names missing): what those features add",
    "scan": "the sensor's programs plus port-scan detection (scan.bpf.o: kfree_skb and a "
            "per-connection sock_ops program)",
    "floor": "two empty programs on the byte hooks' tracepoints (bench/floor.bpf.c)",
}


class AttachedPrograms:
    """The sensor's kernel side, loaded as the sensor loads it, drained every second.

    ``packet_hooks`` is the sensor setting; ``core`` loads the net object without the
    features that read system call arguments (DNS answers, raw/ping destinations)."""

    def __init__(self, names: tuple[str, ...], leave_out: frozenset[str] = frozenset(),
                 packet_hooks: str = "auto", core: bool = False, scan: bool = False) -> None:
        from netwarden.config import Config
        from netwarden.sensor import hooks
        from netwarden.sensor.collectors import FlowDrainer
        from netwarden.sensor.loader import Loader, cgroup2_root, kernel_features
        from netwarden.sensor.scan import scan_object_config
        from netwarden.sensor.service import object_config
        cfg = Config().sensor
        features = kernel_features(hooks.OBJECTS)
        mode = hooks.choose_bpf_mode(features, cfg.bpf_mode)
        plan = hooks.choose_packet_hooks(features, mode, packet_hooks)
        if core:
            plan = hooks.PacketHookPlan(False, plan.on_demand, "core: no DNS names, no raw or "
                                        "ping destinations")
            names = tuple(n for n in names if n != "dns")
        if scan:
            names += ("scan",)
        # The sensor's own choice of objects: dns.bpf.o only where the receive hook cannot
        # read DNS answers (there, "dns" in --objects is covered by "net").
        specs = [spec for spec in hooks.objects_for(plan) if spec.name in names]
        loader = Loader(features, cgroup2_root(), mode=mode, packet_hooks=plan)
        self.objects = [loader.load(spec, scan_object_config(Config().scan, features)
                                    if spec is hooks.SCAN_OBJECT else object_config(spec, cfg),
                                    hooks.choose_hook_sets(features) if spec.hook_sets else None)
                        for spec in specs]
        self._leave_out = leave_out
        self._drainer: FlowDrainer | None = None
        if "net" in names:
            self._drainer = FlowDrainer.for_net(self.objects[0])
        self.plan = plan
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain_loop, daemon=True)
        self._thread.start()

    @staticmethod
    def describe_plan() -> str:
        """The default plan, as the sensor would explain it."""
        from netwarden.config import Config
        from netwarden.sensor import hooks
        from netwarden.sensor.loader import kernel_features
        cfg = Config().sensor
        features = kernel_features(hooks.OBJECTS)
        mode = hooks.choose_bpf_mode(features, cfg.bpf_mode)
        return hooks.choose_packet_hooks(features, mode, cfg.packet_hooks).explain()

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


class FloorPrograms:
    """Two empty programs on the byte hooks' tracepoints (bench/floor.bpf.c)."""

    def __init__(self, work: Path) -> None:
        from netwarden.sensor import libbpf as lb
        path = work / "floor.bpf.o"
        multiarch = subprocess.run(["gcc", "-print-multiarch"], capture_output=True,
                                   text=True).stdout.strip() or f"{os.uname().machine}-linux-gnu"
        subprocess.run(["clang", "-O2", "-target", "bpf", f"-I/usr/include/{multiarch}", "-c",
                        str(REPO / "bench" / "floor.bpf.c"), "-o", str(path)], check=True)
        self._obj = lb.BpfObject(str(path))
        self._obj.load()
        self._links: list = []

    def set_attached(self, attached: bool) -> None:
        for link in self._links:
            link.destroy()
        self._links = ([self._obj.program(name).attach() for name in ("floor_send", "floor_recv")]
                       if attached else [])

    def close(self) -> None:
        self.set_attached(False)
        self._obj.close()


def measure_slowdown(work: Path, binary: Path, pairs: int, slice_s: float,
                     variants: dict[str, AttachedPrograms | FloorPrograms],
                     workloads: tuple[str, ...] = tuple(WORKLOADS)
                     ) -> dict[str, list[Slowdown]]:
    """Per variant (its programs attached alone), the slowdown of each workload."""
    results: dict[str, list[Slowdown]] = {name: [] for name in variants}
    names = ["without", *variants]
    for workload in workloads:
        mode, size = WORKLOADS[workload]
        gen = Generator.copy(binary, work / "exe", f"pair-{workload}")
        rates: dict[str, list[float]] = {name: [] for name in names}
        for i in range(pairs):
            shift = i % len(names)
            for name in names[shift:] + names[:shift]:
                for other, programs in variants.items():
                    if other != name:
                        programs.set_attached(False)
                if name in variants:
                    variants[name].set_attached(True)
                r = run_workload(gen, mode, size, slice_s)
                rates[name].append(r["sends"] / r["seconds"])
        for program in variants.values():
            program.set_attached(False)
        for name in variants:
            ratios = [100.0 * (1 - w / wo) for w, wo in zip(rates[name], rates["without"],
                                                            strict=True)]
            low, high = bootstrap_ci(ratios)
            results[name].append(Slowdown(workload, pairs, statistics.median(rates["without"]),
                                          statistics.median(rates[name]),
                                          statistics.median(ratios), low, high))
    return results


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
    variants = list(report["variants"])  # type: ignore[call-overload]
    lines = [f"kernel {report['kernel']}, {report['cpus']} CPUs; slowdown: median of "
             f"{report['pairs']} rounds of {report['slice_s']} s runs, each variant against "
             f"no program in the same round (objects: {report['objects']}"
             + (f", left out: {report['left_out']}" if report["left_out"] else "")
             + f"), workload pinned to CPU {PIN_CPU}",
             f"sensor packet hooks: {report['packet_hooks']}"]
    lines += [f"  {name}: {VARIANTS[name]}" for name in variants]
    lines.append(f"{'workload':10} {'ops/s without':>14} "
                 + " ".join(f"{name:>8} {'95% interval':>15}" for name in variants))
    results = report["slowdown"]
    for i, workload in enumerate(r["workload"] for r in results[variants[0]]):  # type: ignore[index]
        row = results[variants[0]][i]  # type: ignore[index]
        cells = []
        for name in variants:
            r = results[name][i]  # type: ignore[index]
            cells.append(f"{r['slowdown_pct']:7.1f}% [{r['ci95_low_pct']:5.1f}%, "
                         f"{r['ci95_high_pct']:5.1f}%]")
        lines.append(f"{workload:10} {row['rate_without']:14.0f} " + " ".join(cells))
    if report.get("process_blocks"):
        lines += render_blocks(report)
    sensor = report["sensor"]
    if sensor is None:
        return "\n".join(lines)
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
    parser.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS),
                        help="which phase-1 workloads to run, comma-separated")
    parser.add_argument("--slowdown-only", action="store_true",
                        help="skip phase 2 (the real sensor process under floods)")
    parser.add_argument("--blocks", type=int, default=0, metavar="ROUNDS",
                        help="run phase 3 with this many rounds (0: skip it; 12 is a start)")
    parser.add_argument("--block-seconds", type=float, default=3.0,
                        help="seconds per phase-3 block")
    parser.add_argument("--monitors", default=",".join(MONITORS),
                        help="what phase 3 compares with nothing, comma-separated: "
                             "sensor (the netwarden sensor process), nethogs")
    parser.add_argument("--variants", default="sensor,floor",
                        help="what phase 1 compares with no program, comma-separated: "
                             + "; ".join(f"{k}: {v}" for k, v in VARIANTS.items()))
    parser.add_argument("--objects", default="net,exec,dns",
                        help="which BPF objects phase 1 attaches (to see what each one costs)")
    parser.add_argument("--leave-out", default="", metavar="PROGRAMS",
                        help="programs phase 1 keeps detached, comma-separated (to see what "
                             "one costs; leaving out a byte hook makes the sensor miscount)")
    args = parser.parse_args()
    leave_out = frozenset(p.strip() for p in args.leave_out.split(",") if p.strip())
    objects = tuple(o.strip() for o in args.objects.split(",") if o.strip())
    workloads = tuple(w.strip() for w in args.workloads.split(",") if w.strip())
    if not workloads or not set(workloads) <= set(WORKLOADS):
        parser.error(f"--workloads: a comma-separated subset of {', '.join(WORKLOADS)}")
    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    if not variants or not set(variants) <= set(VARIANTS):
        parser.error(f"--variants: a comma-separated subset of {', '.join(VARIANTS)}")
    monitors = tuple(m.strip() for m in args.monitors.split(",") if m.strip())
    if args.blocks and (not monitors or not set(monitors) <= set(MONITORS)):
        parser.error(f"--monitors: a comma-separated subset of {', '.join(MONITORS)}")
    if args.blocks and "nethogs" in monitors and NethogsMonitor.missing():
        parser.error(NethogsMonitor.missing())
    known = {"net", "exec", "dns"}
    if not objects or not set(objects) <= known:
        parser.error(f"--objects: a comma-separated subset of {', '.join(sorted(known))}")
    if os.geteuid() != 0:
        print("bench: needs root (it loads BPF programs)", file=sys.stderr)
        return 77
    work = Path(tempfile.mkdtemp(prefix="nwbench-"))
    try:
        binary = build_trafficgen(work / "build")
        loaded: dict[str, AttachedPrograms | FloorPrograms] = {}
        try:
            for name in variants:
                loaded[name] = (FloorPrograms(work) if name == "floor" else AttachedPrograms(
                    objects, leave_out, packet_hooks="always" if name == "always" else "auto",
                    core=name == "core", scan=name == "scan"))
                loaded[name].set_attached(False)
            sensor_plan = AttachedPrograms.describe_plan()
            slowdowns = measure_slowdown(work, binary, args.pairs, args.slice, loaded,
                                         workloads)
        finally:
            for programs in loaded.values():
                programs.close()
        blocks = None
        if args.blocks:
            chosen: list[SensorMonitor | NethogsMonitor] = [
                SensorMonitor(work) if m == "sensor" else NethogsMonitor() for m in monitors]
            print(f"phase 3: {args.blocks} rounds of {args.block_seconds} s blocks",
                  file=sys.stderr)
            rows = measure_blocks(work, binary, args.blocks, args.block_seconds, chosen,
                                  {w: WORKLOADS[w] for w in workloads}, run_workload,
                                  bootstrap_ci, lambda line: print(line, file=sys.stderr))
            rss = [m.peak_rss_mib for m in chosen if isinstance(m, SensorMonitor)]
            blocks = {"rounds": args.blocks, "block_s": args.block_seconds,
                      "monitors": list(monitors), "slowdown": [asdict(r) for r in rows],
                      "sensor_peak_rss_mib": rss[0] if rss else None}
        sensor = None if args.slowdown_only else measure_sensor(work, binary,
                                                                args.flood_seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = {"kernel": os.uname().release, "cpus": os.cpu_count(), "pairs": args.pairs,
              "slice_s": args.slice, "objects": ",".join(objects),
              "left_out": ",".join(sorted(leave_out)),
              "packet_hooks": sensor_plan, "variants": list(variants),
              "slowdown": {name: [asdict(s) for s in results]
                           for name, results in slowdowns.items()},
              "sensor": sensor, "process_blocks": blocks}
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
