#!/usr/bin/env python3
"""What port-scan detection's programs cost per operation, from the kernel's own accounting.

On a loaded shared VM the paired wall-clock comparison (`sensor_overhead.py --variants
sensor,scan`) can drown a sub-point effect in noise. This measures the programs themselves:
with `kernel.bpf_stats_enabled` on for the run (restored after), the sensor's objects plus
scan.bpf.o are attached as the sensor attaches them, each workload runs for --seconds pinned to
one CPU, and the kernel's run count and run time of each scan program (bpf_prog_info) are read
before and after. Reported per workload: program runs per operation, their nanoseconds per
operation, and that time as a share of the workload's own CPU time per operation: an upper
bound of the slowdown they add (statistics on make each run ~20-30 ns dearer than it is).

    python3 bench/scan_cost.py [--seconds 3] [--json out.json]     (root)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from sensor_overhead import WORKLOADS, AttachedPrograms, run_workload  # noqa: E402

from netwarden.sensor import hooks  # noqa: E402
from netwarden.sensor.libbpf import prog_info  # noqa: E402
from tests.support.traffic import Generator, build_trafficgen  # noqa: E402

STATS = Path("/proc/sys/kernel/bpf_stats_enabled")


def scan_programs(programs: AttachedPrograms) -> dict[str, int]:
    """Name -> fd of each attached program of scan.bpf.o."""
    (scan,) = [obj for obj in programs.objects if obj.spec is hooks.SCAN_OBJECT]
    return {p.name: p.fd for p in scan.attached_programs()}


def totals(fds: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {name: (prog_info(fd).run_cnt, prog_info(fd).run_time_ns)
            for name, fd in fds.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench: needs root (it loads BPF programs)", file=sys.stderr)
        return 77
    work = Path(tempfile.mkdtemp(prefix="nwscancost-"))
    before_stats = STATS.read_text().strip()
    rows = []
    try:
        binary = build_trafficgen(work / "build")
        programs = AttachedPrograms(("net", "exec", "dns"), scan=True)
        try:
            programs.set_attached(True)
            fds = scan_programs(programs)
            STATS.write_text("1\n")
            for workload, (mode, size) in WORKLOADS.items():
                gen = Generator.copy(binary, work / "exe", f"cost-{workload}")
                start = totals(fds)
                result = run_workload(gen, mode, size, args.seconds)
                end = totals(fds)
                ops = max(1, int(result["sends"]))
                runs = sum(end[n][0] - start[n][0] for n in fds)
                nanos = sum(end[n][1] - start[n][1] for n in fds)
                cpu_ns_per_op = 1e9 * float(result["cpu_seconds"]) / ops
                rows.append({"workload": workload, "ops": ops,
                             "runs_per_op": runs / ops, "ns_per_op": nanos / ops,
                             "cpu_ns_per_op": cpu_ns_per_op,
                             "share_pct": 100 * (nanos / ops) / cpu_ns_per_op,
                             "by_program": {n: end[n][0] - start[n][0] for n in fds}})
        finally:
            STATS.write_text(before_stats + "\n")
            programs.close()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"kernel {os.uname().release}; scan.bpf.o programs with the sensor's attached, "
          f"{args.seconds} s per workload")
    print(f"{'workload':16} {'ops':>10} {'runs/op':>8} {'ns/op':>8} {'op CPU ns':>10} "
          f"{'share':>7}  runs by program")
    for r in rows:
        print(f"{r['workload']:16} {r['ops']:10d} {r['runs_per_op']:8.3f} "
              f"{r['ns_per_op']:8.1f} {r['cpu_ns_per_op']:10.0f} {r['share_pct']:6.2f}%  "
              f"{r['by_program']}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
