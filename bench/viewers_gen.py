#!/usr/bin/env python3
"""Generate a large netwarden store for the viewer benchmarks (not the sensor: plain SQL).

The store has the real schema (netwarden.store.schema) and looks like a busy host's month:
--rows flow rows spread evenly over --days days ending now, ~200 executables (some with two
versions), 1000 process identities, 20000 remote addresses, 2000 domains (a third of the
flows have none), 3 containers. Rows are inserted in time order with the indexes dropped and
rebuilt afterwards, the rollups built as migration 7 builds them for an existing store, then
the file is switched to WAL as the sensor leaves it.

    python3 bench/viewers_gen.py OUT.db [--rows 10000000] [--days 30] [--seed 1]
    python3 bench/viewers_gen.py --top-up STORE.db [--ahead-s 3600]

--top-up adds rows at the same rate from the store's last row to --ahead-s past now (with
their rollups), so a store made earlier has traffic in the last minute while a benchmark
runs.
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

from netwarden.store.rollups import ROLLUPS, add_flows, build_local  # noqa: E402
from netwarden.store.schema import migrate  # noqa: E402

BATCH = 200_000
# Every column but id (AUTOINCREMENT since schema 4: the remote sink's stable sequence).
INSERT = ("INSERT INTO flows (time, host_id, process_id, family, protocol, ip_protocol, "
          "laddr_id, lport, raddr_id, rport, domain_id, netns, sent, recv) "
          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def populate_small_tables(conn: sqlite3.Connection, rng: random.Random, start: int) -> None:
    conn.execute("INSERT INTO hosts (name) VALUES ('bench-host')")
    exes = []
    for i in range(200):
        for version in range(1 + (i % 10 == 0)):
            exes.append((f"/usr/bin/prog{i:03d}", f"{i:03d}{version}".ljust(64, "e"),
                         start + version * 86400, start + version * 86400))
    conn.executemany("INSERT INTO executables (path, sha256, first_seen, first_flow) "
                     "VALUES (?, ?, ?, ?)", exes)
    processes = []
    for i in range(1000):
        exe_id = rng.randint(1, len(exes))
        processes.append((exe_id, rng.randint(1, len(exes)), f"prog{exe_id}",
                          f"prog{exe_id} -x {i}",
                          rng.choice((0, 1000, 1000, 1000, 33)),
                          "" if i % 10 else f"container{i % 3}", start))
    conn.executemany("INSERT INTO processes (exe_id, parent_exe_id, name, cmdline, uid, "
                     "container, first_seen) VALUES (?, ?, ?, ?, ?, ?, ?)", processes)
    addresses: dict[str, None] = {}        # unique, in drawing order
    while len(addresses) < 20_000:          # a rare repeat is drawn again (other seeds)
        i = len(addresses)
        addresses[f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}."
                  f"{i % 250 + 1}"] = None
    conn.executemany("INSERT INTO addresses (addr) VALUES (?)",
                     [(a,) for a in addresses] + [("10.0.0.2",)])
    conn.executemany("INSERT OR IGNORE INTO domains (name) VALUES (?)",
                     [(f"host{i}.example{i % 97}.com",) for i in range(2000)])


def flow_rows(rng: random.Random, count: int, start: int, end: int):
    local = 20_001  # the last address inserted: 10.0.0.2
    step = (end - start) / count
    ports = (443, 443, 443, 80, 53, 22, 993, 5223, 8080)
    for n in range(count):
        time_s = start + int(n * step) // 10 * 10
        domain = rng.randint(1, 2000) if rng.random() > 0.33 else None
        yield (time_s, 1, rng.randint(1, 1000), 2, "tcp", 6, local, rng.randint(32768, 60999),
               rng.randint(1, 20_000), rng.choice(ports), domain, 4026531840,
               rng.randint(40, 200_000), rng.randint(40, 2_000_000))


def generate(path: Path, rows: int, days: int, seed: int) -> None:
    rng = random.Random(seed)
    end = int(time.time())
    start = end - days * 86400
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = OFF")
    conn.execute("PRAGMA synchronous = OFF")
    migrate(conn, start)
    indexes = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                           "AND tbl_name = 'flows' AND sql IS NOT NULL").fetchall()
    for name, _ in indexes:
        conn.execute(f"DROP INDEX {name}")
    conn.execute("BEGIN")
    populate_small_tables(conn, rng, start)
    batch = []
    began = time.monotonic()
    for row in flow_rows(rng, rows, start, end):
        batch.append(row)
        if len(batch) >= BATCH:
            conn.executemany(INSERT, batch)
            batch.clear()
    conn.executemany(INSERT, batch)
    conn.execute("COMMIT")
    inserted = time.monotonic() - began
    for _, sql in indexes:
        conn.execute(sql)
    indexed = time.monotonic() - began - inserted
    # Rows inserted past the writer have no rollups yet: built as migration 7 builds them.
    conn.execute("BEGIN")
    build_local(conn, lambda line: print(line, file=sys.stderr))
    conn.execute("COMMIT")
    rolled = time.monotonic() - began - inserted - indexed
    counts = {r.table: conn.execute(f"SELECT COUNT(*) FROM {r.table}").fetchone()[0]
              for r in ROLLUPS}
    conn.execute("ANALYZE")
    conn.execute("PRAGMA journal_mode = WAL")
    conn.close()
    print(f"{rows} flow rows over {days} days in {path} ({path.stat().st_size >> 20} MiB): "
          f"inserted in {inserted:.0f} s, indexed in {indexed:.0f} s, rollups built in "
          f"{rolled:.0f} s; rollup rows: {counts}", file=sys.stderr)


def top_up(path: Path, ahead_s: int, seed: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    count, low, high, last_id = conn.execute(
        "SELECT COUNT(*), MIN(time), MAX(time), MAX(id) FROM flows").fetchone()
    end = int(time.time()) + ahead_s
    rows = int(count / max(1, high - low) * (end - high))
    conn.execute("BEGIN")
    conn.executemany(INSERT, flow_rows(random.Random(seed), rows, high + 10, end))
    add_flows(conn, "id > ?", (last_id,))
    conn.execute("COMMIT")
    conn.close()
    print(f"{rows} flow rows added up to {end}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--top-up", action="store_true")
    parser.add_argument("--ahead-s", type=int, default=3600)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.top_up:
        top_up(args.out, args.ahead_s, args.seed)
        return 0
    if args.out.exists():
        parser.error(f"{args.out} exists; remove it first")
    generate(args.out, args.rows, args.days, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
