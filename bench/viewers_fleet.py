#!/usr/bin/env python3
"""A fleet's PostgreSQL server for the viewer benchmarks: --hosts stores of --rows flows each,
shaped as bench/viewers_gen.py shapes one store, loaded with COPY; then the first-screen
benchmark over every range (bench/viewers_first_screen.py --ranges) against it.

The server is Debian's PostgreSQL started by tests/support/sql_servers.py with the schema from
`netwarden sink --init-schema`, tuned as a fleet's server would be (shared_buffers, work_mem).
Rows are loaded as the superuser with triggers off (session_replication_role = replica: the
rows carry each host's name, as that host's sink would have shipped them), then the rollups
are built from them by the migration's own statements (remote_rollups), timed: the cost of
`--init-schema` on a server that already holds 30M rows.

    python3 bench/viewers_fleet.py [--hosts 30] [--rows 1000000] [--days 30] [--keep]
                                   [--json out.json] [--repeat 3] [--port 5390]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.viewers_gen import flow_rows, populate_small_tables  # noqa: E402
from netwarden.store.dialects import POSTGRESQL  # noqa: E402
from netwarden.store.remote_rollups import rollup_statements  # noqa: E402
from netwarden.store.rollups import ROLLUPS  # noqa: E402
from netwarden.store.schema import migrate  # noqa: E402
from netwarden.store.shipping import local_columns  # noqa: E402
from tests.support.sql_servers import add_roles, provision  # noqa: E402

SMALL_TABLES = ("hosts", "executables", "processes", "addresses", "domains")
READER, READER_PASSWORD = "bench_reader", "bench-reader-secret"
TUNING = {"shared_buffers": "2GB", "work_mem": "64MB", "effective_cache_size": "8GB",
          "max_wal_size": "8GB", "checkpoint_timeout": "30min"}


def copy_rows(cur, table: str, columns: list[str], rows) -> int:
    count = 0
    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def load_host(cur, number: int, rows: int, start: int, end: int) -> None:
    """One host's store: small tables from a scratch SQLite store, flows straight in."""
    host, source = f"bench{number:02d}", uuid.uuid4().hex
    rng = random.Random(number)
    scratch = sqlite3.connect(":memory:", isolation_level=None)
    migrate(scratch, start)
    populate_small_tables(scratch, rng, start)
    for table in SMALL_TABLES:
        columns = [c.name for c in local_columns(scratch, table)]
        copy_rows(cur, table, ["host", "source_id", *columns],
                  ((host, source, *r) for r in
                   scratch.execute(f"SELECT {', '.join(columns)} FROM {table}")))
    scratch.close()
    columns = ["host", "source_id", "id", "time", "host_id", "process_id", "family", "protocol",
               "ip_protocol", "laddr_id", "lport", "raddr_id", "rport", "domain_id", "netns",
               "sent", "recv"]
    copy_rows(cur, "flows", columns, ((host, source, n, *row) for n, row in
                                      enumerate(flow_rows(rng, rows, start, end), 1)))


def tune(srv) -> None:
    with srv.admin() as conn:
        for name, value in TUNING.items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    srv.stop()
    srv.start()


def generate(srv, hosts: int, rows: int, days: int, ahead_s: int) -> dict[str, float]:
    end = int(time.time()) + ahead_s
    start = end - days * 86400
    began = time.monotonic()
    with srv.admin() as conn:
        conn.execute("SET session_replication_role = replica")    # no trigger fires
        with conn.cursor() as cur:
            for number in range(hosts):
                with conn.transaction():
                    load_host(cur, number, rows, start, end)
                print(f"host {number + 1} of {hosts} loaded "
                      f"({time.monotonic() - began:.0f} s)", file=sys.stderr)
        loaded = time.monotonic() - began
        conn.execute("SET session_replication_role = origin")
        conn.execute("SET work_mem = '256MB'")
        built_at = time.monotonic()
        with conn.transaction():
            for statement in rollup_statements(POSTGRESQL):
                if statement.startswith("INSERT"):
                    conn.execute(statement)
        built = time.monotonic() - built_at
        conn.execute("ANALYZE")
        counts = {table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
                  for table in ("flows", *(r.table for r in ROLLUPS))}
    return {"copy_s": round(loaded, 1), "rollup_build_s": round(built, 1), **counts}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=30)
    parser.add_argument("--rows", type=int, default=1_000_000, help="flow rows per host")
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--ahead-s", type=int, default=3600,
                        help="rows reach this far past now (the minute range has traffic)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=5390)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--keep", action="store_true", help="leave the server running")
    args = parser.parse_args()
    srv = provision("postgresql")
    try:
        tune(srv)
        add_roles(srv, "bench_host", "bench-host-secret", READER, READER_PASSWORD)
        figures: dict[str, object] = generate(srv, args.hosts, args.rows, args.days,
                                              args.ahead_s)
        print(json.dumps(figures), file=sys.stderr)
        password = srv.directory / "reader-password"
        password.write_text(READER_PASSWORD + "\n")
        config = srv.directory / "viewer.toml"
        config.write_text(f'[remote]\nreader_password_file = "{password}"\n')
        for path in (srv.directory, password, config):
            os.chmod(path, 0o755 if path.is_dir() else 0o644)
        out = srv.directory / "ranges.json"
        subprocess.run([sys.executable, str(REPO / "bench" / "viewers_first_screen.py"),
                        srv.url(READER), "--ranges", "--config", str(config), "--repeat",
                        str(args.repeat), "--port", str(args.port), "--json", str(out)],
                       check=True, cwd=REPO)
        figures.update(json.loads(out.read_text()))
        print(json.dumps(figures, indent=2))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2) + "\n")
        if args.keep:
            print(f"server left running: {srv.url(READER)} (config {config})", file=sys.stderr)
    finally:
        if not args.keep:
            srv.remove()
    return 0


if __name__ == "__main__":
    sys.exit(main())
