"""Benchmark: time and CPU to sweep a /24 with 20 live hosts, in a namespace LAN.

    sudo python3 bench/discovery_sweep.py [--hosts 20] [--runs 3]

Builds a LAN like the tests' (a bridge in its own namespace, ``nwdb-*`` namespaces,
10.78.1.0/24, nothing in the VM's own network namespace), then runs `netwarden scan` from the
scanner namespace: a start-up baseline (`scan --help`), the ARP sweep alone, the ICMP sweep
alone, and a full pass (every method, the default port list). Prints the wall time and the CPU
(user + system) of the scan process for each run, measured in this run; figures, not
assertions.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.lan import Lan  # noqa: E402

CASES = (("start-up", ["--help"]),         # interpreter and imports only: the baseline
         ("arp sweep", ["--methods", "arp"]),
         ("icmp sweep", ["--methods", "icmp"]),
         ("full pass", []))


def measure(args: list[str]) -> tuple[float, float, int]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(
        ["ip", "netns", "exec", "nwdb-scan", sys.executable, "-m", "netwarden", "scan",
         "--interface", "nwdb-scane", "--json", *args],
        capture_output=True, text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"scan failed: {done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if "--help" in args:
        return wall, cpu, 0
    return wall, cpu, len(json.loads(done.stdout)["devices"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    options = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: it creates network namespaces")
    lan = Lan("nwdb-", "10.78.1", "fd78:1::")
    lan.create()
    try:
        lan.add_host("scan", "02:00:5e:10:01:02", 2)
        for index in range(options.hosts):
            lan.add_host(f"h{index}", f"02:00:5e:10:01:{10 + index:02x}", 10 + index)
        print(f"LAN: 10.78.1.0/24 (253 addresses to probe), {options.hosts} live hosts; "
              f"{os.cpu_count()} CPUs; {options.runs} runs per case")
        for label, args in CASES:
            runs = [measure(args) for _ in range(options.runs)]
            walls, cpus, found = zip(*runs, strict=True)
            print(f"{label:<11} wall median {statistics.median(walls):5.2f} s "
                  f"(runs: {', '.join(f'{w:.2f}' for w in walls)}); "
                  f"CPU median {statistics.median(cpus):5.2f} s "
                  f"(runs: {', '.join(f'{c:.2f}' for c in cpus)}); devices found {set(found)}")
    finally:
        lan.delete()


if __name__ == "__main__":
    main()
