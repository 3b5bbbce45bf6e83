#!/usr/bin/env python3
"""How long a /metrics scrape takes on a big store (figures, not assertions).

Builds a store with the real schema: --rows flow rows over 1000 processes of 200
executables, a health row per 20 flows and an event per 100; then times the first read (the
exporter's start) and a scrape after --new more flow rows arrive.

    python3 bench/metrics_scrape.py OUT.db [--rows 2000000] [--new 10000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from netwarden.metrics.counting import StoreCounter  # noqa: E402
from netwarden.metrics.scrape import scrape  # noqa: E402
from netwarden.store.schema import migrate  # noqa: E402

FLOW = ("INSERT INTO flows (time, host_id, process_id, family, protocol, ip_protocol, laddr_id, "
        "lport, raddr_id, rport, domain_id, netns, sent, recv) "
        "VALUES (?, 1, ?, 2, 'tcp', 6, 1, 40000, 1, 443, NULL, 1, ?, ?)")


def add_flows(conn: sqlite3.Connection, rng: random.Random, count: int, now: int) -> None:
    conn.execute("BEGIN")
    conn.executemany(FLOW, ((now - count + i, rng.randrange(1, 1001), rng.randrange(1 << 16),
                             rng.randrange(1 << 20)) for i in range(count)))
    conn.executemany("INSERT INTO health (time, host_id, source, counter, delta) "
                     "VALUES (?, 1, 'net', 'flow_map_full', 1)",
                     ((now,) for _ in range(count // 20)))
    conn.executemany("INSERT INTO events (time, host_id, kind, data) "
                     "VALUES (?, 1, 'new_executable', '{}')", ((now,) for _ in range(count // 100)))
    conn.execute("COMMIT")


def build(path: Path, rows: int, rng: random.Random) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    now = int(time.time())
    migrate(conn, now)
    conn.execute("INSERT INTO hosts (name) VALUES ('bench')")
    conn.execute("INSERT INTO addresses (addr) VALUES ('10.0.0.1')")
    conn.executemany("INSERT INTO executables (path, sha256, first_seen) VALUES (?, ?, ?)",
                     [(f"/usr/bin/prog{i:03d}", f"{i:064d}", now) for i in range(200)])
    conn.executemany("INSERT INTO processes (exe_id, name, cmdline, uid, first_seen) "
                     "VALUES (?, ?, ?, 0, ?)",
                     [(1 + i % 200, f"p{i}", f"p{i} --x", now) for i in range(1000)])
    add_flows(conn, rng, rows, now)
    conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--new", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(1)
    args.out.unlink(missing_ok=True)
    build(args.out, args.rows, rng)
    counter = StoreCounter(top_n=20)
    started = time.perf_counter()
    scrape(counter, args.out)
    print(f"first read of {args.rows} flow rows: {time.perf_counter() - started:.3f} s")
    started = time.perf_counter()
    scrape(counter, args.out)
    print(f"a scrape, nothing new: {time.perf_counter() - started:.4f} s")
    conn = sqlite3.connect(args.out, isolation_level=None)
    add_flows(conn, rng, args.new, int(time.time()))
    conn.close()
    started = time.perf_counter()
    text = scrape(counter, args.out)
    print(f"a scrape after {args.new} new flow rows: {time.perf_counter() - started:.4f} s "
          f"({len(text)} bytes of text)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
