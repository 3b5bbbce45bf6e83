#!/usr/bin/env python3
"""Remote-sink throughput, measured side by side in one run (root; run from the repository
root with a Python that has psycopg and PyMySQL, e.g. /work/main/.venv/bin/python).

Every figure comes from the real code: the local store is written by SqliteWriter, the rows are
shipped by netwarden.sink.shipper.Shipper, the servers are real PostgreSQL and MariaDB started
in temporary directories on loopback (tests/support/sql_servers.py; PostgreSQL with fsync=off,
MariaDB with innodb_flush_log_at_trx_commit=2, so a COMMIT costs less than on a durable
server), with the schema of `netwarden sink --init-schema` and the roles of `netwarden sink
--print-grants`. Each way of inserting logs in as its own host role, so its rows never collide
with another's and every one is really inserted.

Phase 1, throughput (per server). One store of --rows flow rows (a few hundred processes and
addresses, written window by window through SqliteWriter.write) is shipped by each method in
its own fresh interpreter (so CPU seconds and peak RSS are the sink's alone):
  sink      the Shipper as netwarden runs it (remote_db: COPY straight into each table on
            PostgreSQL, multi-row INSERT IGNORE + SHOW WARNINGS on MariaDB)
  per-row   the baseline: the same Shipper, batches and commits, but one INSERT statement per
            row (the same idempotent statement with one row; MariaDB without SHOW WARNINGS,
            which only favours the baseline)
  variants  (--variants; each runs where its driver allows it)
            staged     PostgreSQL: COPY into a temporary table, then INSERT ... SELECT ... ON
                       CONFLICT DO NOTHING (the sink before remote schema 2; its resend path)
            pipeline   PostgreSQL: psycopg's executemany of the one-row statement (pipelined)
            onestmt    MariaDB: one multi-row INSERT IGNORE per table and batch (PyMySQL
                       executemany) instead of statements of at most 2,000 rows
The machine is shared, so the methods are interleaved: each ships --chunks slices of the store
in turn (order rotating), and a method's speed-up is the median over slices of (its rows/s /
the baseline's rows/s on the same slice), with a bootstrap 95% interval.

Phase 2, replay (per server): a small store is shipped by a sink running its service loop
(Shipper.run, interval 5 s, retry doubling from 1 s); the server is stopped for --outage
seconds while --backlog rows are written; then it is started again. Reported: the catch-up
alone (the sink's first successful round after the restart, to caught up) and the time from
the server accepting connections to caught up (which adds the sink's retry pause).

Phase 3, fleet (PostgreSQL): for each count in --hosts, that many simulated hosts, each with
its own store (own source_id), its own login role (from the printed grants) and its own
Shipper and state file. Feeder processes write each host's window of --host-rate rows every
10 s (hosts staggered over the window); --fleet-workers shipper processes each serve their
share of the hosts (host i -> worker i mod W) the way each host's `netwarden sink` would: a
host's catch_up() when its 5 s interval is due, its connection kept open. After a warm-up, the
lag of every host (rows in its store the server lacks) is taken at the start, middle and end
of --duration seconds; accepted rows/s comes from the cursors that moved.

    python3 bench/sink_throughput.py [--rows 1000000] [--backlog 500000] [--hosts 1,10,100]
        [--duration 60] [--servers postgresql,mariadb] [--variants staged,pipeline,onestmt]
        [--phases throughput,replay,fleet] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import io
import json
import math
import os
import random
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.sql_servers import (  # noqa: E402
    ADMIN_DATABASE,
    MariadbServer,
    PostgresServer,
    admin_password_file,
)

Server = PostgresServer | MariadbServer
PASSWORD = "bench-host-secret-9"
READER_ROLE = "bench_reader"
WINDOW_S = 10                  # the sensor's default write_interval_s
SHIP_INTERVAL_S = 5.0          # the sink's default interval_s
BATCH_ROWS = 5000              # the sink's default batch_rows
#: A busy host: ~1,000 distinct (process, 5-tuple) flows active in each 10 s window, e.g. a
#: reverse proxy taking ~100 short connections a second. A desktop writes ~20-200 a window.
BUSY_ROWS_PER_WINDOW = 1000
METHODS_FOR = {"postgresql": ("staged", "pipeline"), "mariadb": ("onestmt",)}


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- the rows: a realistic mix, written by the real writer ----

class FlowMix:
    """Distinct flows from a few hundred processes talking to a few hundred addresses."""

    def __init__(self, seed: int, processes: int = 300, addresses: int = 400) -> None:
        from netwarden.model import Executable, ProgramIdentity
        self.rng = random.Random(seed)
        parents = [Executable("/usr/bin/bash", "b" * 64),
                   Executable("/usr/lib/systemd/systemd", "d" * 64)]
        self.programs = [ProgramIdentity(
            Executable(f"/usr/bin/app{i // 2}", f"{i // 2:064x}"), f"app{i // 2}",
            f"app{i // 2} --worker {i % 2}", 1000 + i % 7, parent=parents[i % 2],
            container="web1" if i % 25 == 0 else "") for i in range(processes)]
        self.addresses = [f"203.0.{i // 200}.{i % 200 + 1}" if i % 5 else f"2001:db8::{i:x}"
                          for i in range(addresses)]
        self.domains = [""] * 3 + [f"svc{i}.example.net" for i in range(60)]
        self.ports = [443, 443, 443, 80, 53, 22, 5432, 8080, 993, 123]

    def window(self, time_s: int, count: int) -> list[Any]:
        from netwarden.model import FlowRow
        rng, rows = self.rng, []
        for _ in range(count):
            raddr = rng.choice(self.addresses)
            udp = rng.random() < 0.15
            rows.append(FlowRow(
                time=time_s, program=rng.choice(self.programs), family=10 if ":" in raddr else 2,
                protocol="udp" if udp else "tcp", ip_protocol=17 if udp else 6,
                laddr="2001:db8::2" if ":" in raddr else "10.0.0.2",
                lport=rng.randrange(32768, 61000), raddr=raddr, rport=rng.choice(self.ports),
                sent=rng.randrange(40, 2_000_000), recv=rng.randrange(40, 20_000_000),
                netns=4026531840, domain=rng.choice(self.domains)))
        return rows


def write_store(path: Path, rows: int, mix: FlowMix, start: int, per_window: int = 2000,
                host: str = "bench") -> int:
    """Append ``rows`` flow rows in windows of ``per_window``; returns the next window time."""
    from netwarden.store.sqlite_writer import SqliteWriter
    writer = SqliteWriter(path, start, group=None, host=host)
    written, when = 0, start
    try:
        while written < rows:
            count = min(per_window, rows - written)
            writer.write(mix.window(when, count), [], [], when)
            written += count
            when += WINDOW_S
    finally:
        writer.close()
    return when


def store_rows(path: Path) -> dict[str, int]:
    from netwarden.store.shipping import SHIPPED_TABLES
    conn = sqlite3.connect(path)
    try:
        return {t.name: conn.execute(f"SELECT COUNT(*) FROM {t.name}").fetchone()[0]
                for t in SHIPPED_TABLES}
    finally:
        conn.close()


# ---- servers, schema and roles ----

def netwarden_cli(*args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "netwarden", *args], capture_output=True,
                          text=True, timeout=300, cwd=REPO)
    if done.returncode != 0:
        raise RuntimeError(f"netwarden {' '.join(args)}: {done.returncode}\n{done.stderr}")
    return done.stdout


def start_server(kind: str, max_connections: int = 300) -> Server:
    """A fresh server with the schema `netwarden sink --init-schema` applies."""
    # Not under a 0700 directory: the server's own user must reach its directory.
    directory = Path(tempfile.mkdtemp(prefix=f"netwarden-bench-{kind}-"))
    srv: Server = PostgresServer(directory, max_connections=max_connections) \
        if kind == "postgresql" else MariadbServer(directory)
    srv.start()
    srv.create_database()
    netwarden_cli("sink", "--init-schema", "--admin-url", srv.admin_url(), "--user", "nobody",
                  "--admin-password-file", str(admin_password_file(srv.directory)))
    return srv


def printed_grants(dialect: str, role: str) -> str:
    """Exactly what `netwarden sink --print-grants DIALECT --role ROLE` prints (its function,
    called in this process: a thousand interpreters would take minutes)."""
    from netwarden.config import Config
    from netwarden.sink.commands import cmd_print_grants
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        cmd_print_grants(dialect, Config(), argparse.Namespace(
            role=role, database=ADMIN_DATABASE, reader_role=READER_ROLE))
    return out.getvalue()


def add_host_roles(srv: Server, roles: Sequence[str]) -> None:
    if srv.dialect == "postgresql":
        for start in range(0, len(roles), 200):
            part = roles[start:start + 200]
            srv.run_script("".join(printed_grants("postgresql", r) for r in part)
                           + "".join(f"ALTER ROLE \"{r}\" PASSWORD '{PASSWORD}';\n"
                                     for r in part))
        return
    for role in roles:
        srv.run_script(printed_grants("mariadb", role))
        srv.set_password(role, PASSWORD)


def server_cpu_s(srv: Server) -> float:
    """CPU seconds of the server's processes: every descendant of the process started (a
    PostgreSQL backend calls setsid(), so the process group would not find it)."""
    if srv.proc is None:
        return 0.0
    parents: dict[int, int] = {}
    times: dict[int, int] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = int(fields[11]) + int(fields[12])
    family, ticks = {srv.proc.pid}, 0
    for pid in sorted(parents):          # children have higher pids, save after a wrap
        if pid in family or parents[pid] in family:
            family.add(pid)
    for pid in parents:                  # a second pass for any pid-wrapped child
        if parents[pid] in family:
            family.add(pid)
    for pid in family:
        ticks += times.get(pid, 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def rows_on_server(srv: Server) -> dict[str, int]:
    """Flow rows per host role, as the administrator sees them."""
    conn = srv.admin()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT host, COUNT(*) FROM flows GROUP BY host")
            return {str(h): int(n) for h, n in cur.fetchall()}
    finally:
        conn.close()


# ---- the ways of inserting (in the child) ----

def method_connector(method: str) -> Callable[[Any], Any]:
    """A connector for Shipper: netwarden's own, or one whose insert differs."""
    from netwarden.store import remote_db

    def connector(target: Any) -> Any:
        remote = remote_db.connect(target)
        cls = {"sink": None, "per-row": PerRow, "staged": Staged, "pipeline": Pipeline,
               "onestmt": OneStatement}[method]
        return remote if cls is None else cls()(target, remote._raw, remote._driver_errors)
    return connector


def PerRow() -> type:
    from netwarden.store.dialects import MARIADB  # noqa: F401
    from netwarden.store.remote_db import RemoteConnection

    class PerRowConnection(RemoteConnection):
        """The baseline: one INSERT statement per row, same batches and commits."""

        def insert(self, out: Any) -> None:
            sql = self.dialect.idempotent_insert(out.table, out.columns, 1, ())
            with self._raw.cursor() as cur:
                for row in out.rows:
                    cur.execute(sql, row)
    return PerRowConnection


def Pipeline() -> type:
    from netwarden.store.remote_db import RemoteConnection

    class PipelineConnection(RemoteConnection):
        """psycopg 3's executemany of the one-row statement: prepared once, pipelined."""

        def insert(self, out: Any) -> None:
            sql = self.dialect.idempotent_insert(out.table, out.columns, 1, ())
            with self._raw.cursor() as cur:
                cur.executemany(sql, out.rows)
    return PipelineConnection


def Staged() -> type:
    from netwarden.store.remote_db import RemoteConnection
    from netwarden.store.remote_schema import shipped_columns
    kinds = {name: {c.name: c.kind for c in cols} for name, cols in shipped_columns().items()}

    class StagedConnection(RemoteConnection):
        """COPY into a session's temporary table (emptied at COMMIT), then one INSERT ...
        SELECT ... ON CONFLICT DO NOTHING per table and batch: the sink's design before
        remote schema version 2, and now its path for a resend."""

        made: set[str] = set()

        def insert(self, out: Any) -> None:
            table, columns, rows = out.table, out.columns, out.rows
            q = self.dialect.ident
            temp, names = q(f"incoming_{table}"), ", ".join(q(c) for c in columns)
            with self._raw.cursor() as cur:
                if table not in self.made:
                    types = [self.dialect.column_type(kinds[table].get(c, "TEXT"))
                             for c in columns]
                    body = ", ".join(f"{q(c)} {t}" for c, t in zip(columns, types))
                    cur.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {temp} ({body}) "
                                "ON COMMIT DELETE ROWS")
                    self.made = self.made | {table}
                with cur.copy(f"COPY {temp} ({names}) FROM STDIN") as copy:
                    for row in rows:
                        copy.write_row(row)
                cur.execute(f"INSERT INTO {q(table)} ({names}) SELECT {names} FROM {temp} "
                            "ON CONFLICT DO NOTHING")
    return StagedConnection


def OneStatement() -> type:
    from netwarden.store.remote_db import RemoteConnection

    class OneStatementConnection(RemoteConnection):
        """PyMySQL's executemany: the whole batch of a table as one multi-row INSERT IGNORE
        (up to max_allowed_packet), then SHOW WARNINGS once."""

        def insert(self, out: Any) -> None:
            sql = self.dialect.idempotent_insert(out.table, out.columns, 1, ())
            with self._raw.cursor() as cur:
                cur.executemany(sql, out.rows)
                self._refuse_warnings(cur, out.table)
    return OneStatementConnection


# ---- a sink in its own interpreter ----

class Child:
    """This script run with --child SPEC: a fresh interpreter (its peak RSS and CPU seconds are
    its own, nothing inherited from this process), driven by JSON lines."""

    def __init__(self, spec: dict[str, Any]) -> None:
        # In a file: a thousand hosts' spec is longer than one argument may be (128 KiB).
        with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="sink-bench-child-",
                                         delete=False) as file:
            json.dump(spec, file)
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", file.name],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)

    def ask(self, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(command) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the child died ({self.proc.wait()}) answering {command}")
        return json.loads(line)

    def read(self) -> dict[str, Any]:
        """The child's next line (one it writes on its own, e.g. that it is ready)."""
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the child died ({self.proc.wait()})")
        return json.loads(line)

    def finish(self) -> dict[str, Any]:
        """Tell it to stop; its last line is its account (usage, records)."""
        try:
            return self.ask(do="quit")
        finally:
            self.proc.wait(timeout=120)


def own_usage() -> dict[str, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    hwm = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            hwm = int(line.split()[1]) / 1024
    return {"cpu_s": round(usage.ru_utime + usage.ru_stime, 3), "peak_rss_mib": round(hwm, 1)}


def make_shipper(spec: dict[str, Any], timed: bool = False) -> Any:
    from netwarden.config import parse_remote_url
    from netwarden.sink.shipper import Shipper
    from netwarden.store.remote_db import OutgoingRows, RemoteTarget
    from netwarden.store.sink_state import SinkStateFile
    target = RemoteTarget(parse_remote_url(spec["url"]), PASSWORD)
    cls = TimedShipper() if timed else Shipper
    method = spec.get("method", "sink")
    shipper = cls(Path(spec["db"]), SinkStateFile(Path(spec["state"])), target,
                  method_connector(method), spec.get("batch_rows", BATCH_ROWS))
    if method != "sink":
        # The other methods send the rows themselves: spare them MariaDB's statements.
        shipper.prepare = lambda dialect, table, columns, rows: OutgoingRows(
            table, tuple(columns), rows)
    return shipper


def TimedShipper() -> type:
    from netwarden.sink.shipper import Shipper

    class Timed(Shipper):
        """The Shipper, noting when each catch_up that shipped something began and ended."""

        records: list[tuple[float, float, int]] = []

        def catch_up(self, stop: Callable[[], bool] = lambda: False) -> int:
            began = time.time()
            shipped = super().catch_up(stop)
            if shipped:
                self.records = [*self.records, (began, time.time(), shipped)]
            return shipped
    return Timed


def stop_on_quit(stop: threading.Event) -> None:
    """Set ``stop`` when the parent writes a line (or goes away)."""
    def watch() -> None:
        sys.stdin.readline()
        stop.set()
    threading.Thread(target=watch, daemon=True).start()


def child_main(spec: dict[str, Any]) -> int:
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    mode = spec["mode"]
    if mode == "ship":
        return child_ship(spec)
    stop = threading.Event()
    stop_on_quit(stop)
    result = {"serve": child_serve, "fleet": child_fleet, "feed": child_feed}[mode](spec, stop)
    print(json.dumps({**result, **own_usage()}), flush=True)
    return 0


def child_ship(spec: dict[str, Any]) -> int:
    """Answer {"do": "ship", "rows": N} with the time it took to ship at least N rows."""
    shipper = make_shipper(spec)
    for line in sys.stdin:
        command = json.loads(line)
        if command["do"] == "quit":
            print(json.dumps(own_usage()), flush=True)
            return 0
        started, cpu = time.perf_counter(), own_usage()["cpu_s"]
        before = shipper.status.shipped_rows
        # catch_up() as the service runs it (reading the next batch while one travels),
        # stopped once this slice's rows are shipped.
        shipper.catch_up(lambda: shipper.status.shipped_rows - before >= command["rows"])
        shipped = shipper.status.shipped_rows - before
        print(json.dumps({"rows": shipped, "seconds": time.perf_counter() - started,
                          "cpu_s": own_usage()["cpu_s"] - cpu}), flush=True)
    return 0


def child_serve(spec: dict[str, Any], stop: threading.Event) -> dict[str, Any]:
    """The sink's service loop (Shipper.run) until told to stop."""
    shipper = make_shipper(spec, timed=True)
    shipper.run(stop.is_set, stop.wait, SHIP_INTERVAL_S, spec.get("retry_max_s", 300.0))
    return {"records": shipper.records}


def child_fleet(spec: dict[str, Any], stop: threading.Event) -> dict[str, Any]:
    """Many hosts' sinks in one process: each host's catch_up() when its interval is due (what
    its own `netwarden sink` loop does), connections kept open."""
    from netwarden.store.remote_db import RemoteError
    from netwarden.store.sqlite_db import StoreUnavailable
    shippers = [make_shipper(host) for host in spec["hosts"]]
    print(json.dumps({"ready": len(shippers)}), flush=True)
    due = [(0.0, i) for i in range(len(shippers))]
    rounds = errors = shipped = 0
    while not stop.is_set():
        when, i = heapq.heappop(due)
        pause = when - time.monotonic()
        if pause > 0 and stop.wait(pause):
            break
        try:
            shipped += shippers[i].catch_up(stop.is_set)
            rounds += 1
            heapq.heappush(due, (time.monotonic() + SHIP_INTERVAL_S, i))
        except (RemoteError, StoreUnavailable, LookupError) as exc:
            errors += 1
            print(f"fleet worker: {exc}", file=sys.stderr)
            heapq.heappush(due, (time.monotonic() + 1.0, i))
    return {"rounds": rounds, "errors": errors, "shipped": shipped}


def child_feed(spec: dict[str, Any], stop: threading.Event) -> dict[str, Any]:
    """Write each host's window of rows every WINDOW_S seconds, hosts staggered."""
    from netwarden.model import FlowRow
    from netwarden.store.sqlite_writer import SqliteWriter
    now = int(time.time())
    hosts = spec["hosts"]
    writers = [SqliteWriter(Path(h["db"]), now, group=None, host="fleet") for h in hosts]
    mix = FlowMix(spec["seed"])
    template = [tuple(vars(r).values())[1:] for r in mix.window(now, spec["rows"])]
    start = spec["start"]
    due = [(start + h["offset"], i) for i, h in enumerate(hosts)]
    heapq.heapify(due)
    windows, late = 0, 0.0
    while not stop.is_set():
        when, i = heapq.heappop(due)
        pause = when - time.time()
        if pause > 0 and stop.wait(pause):
            break
        late = max(late, -pause)
        stamp = int(when)
        writers[i].write([FlowRow(stamp, *fields) for fields in template], [], [], stamp)
        windows += 1
        heapq.heappush(due, (when + WINDOW_S, i))
    for writer in writers:
        writer.close()
    return {"windows": windows, "most_late_s": round(late, 2)}


# ---- phase 1: throughput ----

def bootstrap_ci(values: list[float], rounds: int = 2000) -> tuple[float, float]:
    rng = random.Random(7)
    medians = sorted(statistics.median(rng.choices(values, k=len(values)))
                     for _ in range(rounds))
    return medians[int(0.025 * rounds)], medians[int(0.975 * rounds)]


def measure_throughput(srv: Server, store: Path, methods: Sequence[str], chunks: int,
                       total_rows: int, work: Path) -> dict[str, Any]:
    add_host_roles(srv, [f"bench_{m.replace('-', '_')}" for m in methods])
    children = {m: Child({"mode": "ship", "method": m, "db": str(store),
                          "state": str(work / f"{srv.dialect}-{m}.state"),
                          "url": srv.url(f"bench_{m.replace('-', '_')}")}) for m in methods}
    chunk_rows = BATCH_ROWS * max(1, math.ceil(total_rows / chunks / BATCH_ROWS))
    slices: dict[str, list[dict[str, float]]] = {m: [] for m in methods}
    done: set[str] = set()
    round_no = 0
    while len(done) < len(methods):
        shift = round_no % len(methods)
        for method in [*methods[shift:], *methods[:shift]]:
            if method in done:
                continue
            cpu = server_cpu_s(srv)
            answer = children[method].ask(do="ship", rows=chunk_rows)
            answer["server_cpu_s"] = server_cpu_s(srv) - cpu
            if answer["rows"]:
                slices[method].append(answer)
            if answer["rows"] < chunk_rows:
                done.add(method)
        round_no += 1
        if len(done) < len(methods):
            progress(f"{srv.dialect}: slice {round_no}: " + ", ".join(
                f"{m} {s[-1]['rows'] / s[-1]['seconds']:,.0f} rows/s" for m, s in slices.items()
                if s))
    usage = {m: child.finish() for m, child in children.items()}
    return summarise_throughput(slices, usage, rows_on_server(srv))


def summarise_throughput(slices: dict[str, list[dict[str, float]]],
                         usage: dict[str, dict[str, float]],
                         on_server: dict[str, int]) -> dict[str, Any]:
    base = slices["per-row"]
    out: dict[str, Any] = {}
    for method, parts in slices.items():
        rows = sum(p["rows"] for p in parts)
        seconds = sum(p["seconds"] for p in parts)
        ratios = [(p["rows"] / p["seconds"]) / (b["rows"] / b["seconds"])
                  for p, b in zip(parts, base) if p["rows"] == b["rows"]]
        low, high = bootstrap_ci(ratios) if ratios else (0.0, 0.0)
        out[method] = {
            "rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds),
            "speedup_median": round(statistics.median(ratios), 2) if ratios else None,
            "speedup_ci95": [round(low, 2), round(high, 2)], "paired_slices": len(ratios),
            "sink_cpu_s": usage[method]["cpu_s"],
            "sink_peak_rss_mib": usage[method]["peak_rss_mib"],
            "server_cpu_s": round(sum(p["server_cpu_s"] for p in parts), 2),
            "flow_rows_on_server": on_server.get(f"bench_{method.replace('-', '_')}", 0)}
    return out


# ---- phase 2: replay after an outage ----

def wait_caught_up(state: Path, after: float, timeout: float = 1800) -> float:
    from netwarden.store.sink_state import read_status
    from netwarden.store.sqlite_db import StoreUnavailable
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            status = read_status(state)
        except StoreUnavailable:       # the sink has not made its state file yet
            status = None
        if status and status.state == "caught up" and status.behind_rows == 0 \
                and status.updated > after:
            return status.updated
        time.sleep(0.2)
    raise RuntimeError(f"the sink did not catch up within {timeout} s ({state})")


def measure_replay(srv: Server, method: str, backlog_rows: int, outage_s: float,
                   work: Path) -> dict[str, Any]:
    role = f"replay_{method.replace('-', '_')}"
    add_host_roles(srv, [role])
    name = f"replay-{srv.dialect}-{method}"
    store, state = work / f"{name}.db", work / f"{name}.state"
    mix = FlowMix(11)
    start = int(time.time()) - 86400
    after = write_store(store, 2000, mix, start)
    child = Child({"mode": "serve", "method": method, "db": str(store), "state": str(state),
                   "url": srv.url(role)})
    wait_caught_up(state, 0)
    stopped = time.time()
    srv.stop()
    write_store(store, backlog_rows, mix, after)
    written = time.time() - stopped
    time.sleep(max(0.0, outage_s - written))
    srv.start()
    up = time.time()
    progress(f"{srv.dialect}: {method}: server back after {up - stopped:.0f} s with "
             f"{backlog_rows:,} rows waiting")
    caught = wait_caught_up(state, up)
    account = child.finish()
    began, ended, shipped = next(r for r in account["records"] if r[1] > up)
    return {"method": method, "backlog_rows": backlog_rows, "outage_s": round(up - stopped, 1),
            "catch_up_s": round(ended - began, 2), "rows_shipped": shipped,
            "rows_per_s": round(shipped / (ended - began)),
            "server_up_to_caught_up_s": round(caught - up, 2),
            "sink_cpu_s": account["cpu_s"], "sink_peak_rss_mib": account["peak_rss_mib"]}


# ---- phase 3: the fleet ----

def fleet_template(work: Path) -> Path:
    """One store with the programs and addresses written; copies of it are the hosts."""
    path = work / "fleet-template.db"
    if not path.exists():
        write_store(path, BUSY_ROWS_PER_WINDOW, FlowMix(5), int(time.time()) - 60,
                    per_window=BUSY_ROWS_PER_WINDOW, host="fleet")
    return path


def copy_store(template: Path, path: Path) -> None:
    shutil.copyfile(template, path)
    conn = sqlite3.connect(path)
    conn.execute("UPDATE store_meta SET value = lower(hex(randomblob(16))) "
                 "WHERE key = 'source_id'")
    conn.commit()
    conn.close()


@dataclass
class HostLag:
    behind: int          # rows of every shipped table the server lacks
    written: int         # flow rows in the store
    shipped: int         # flow rows the server has committed


def host_lag(db: Path, state: Path) -> HostLag:
    from netwarden.store.shipping import SHIPPED_TABLES, backlog, source_id
    from netwarden.store.sqlite_db import open_readonly
    conn = open_readonly(db)
    cursors: dict[str, int] = {}
    if state.exists():
        st = open_readonly(state)
        try:
            cursors = dict(st.execute("SELECT table_name, seq FROM cursors WHERE source_id = ?",
                                      (source_id(conn),)).fetchall())
        except sqlite3.OperationalError:      # its sink is still creating it: nothing shipped
            pass
        finally:
            st.close()
    behind = sum(backlog(conn, t, cursors.get(t.name, 0))[0] for t in SHIPPED_TABLES)
    (written,) = conn.execute("SELECT IFNULL(MAX(id), 0) FROM flows").fetchone()
    conn.close()
    return HostLag(behind, int(written), int(cursors.get("flows", 0)))


def sample_fleet(hosts: list[dict[str, Any]]) -> tuple[float, list[HostLag]]:
    began = time.time()
    lags = [host_lag(Path(h["db"]), Path(h["state"])) for h in hosts]
    return (began + time.time()) / 2, lags


def run_fleet_level(srv: Server, count: int, rate: int, duration: float, warmup: float,
                    workers: int, feeders: int, work: Path, method: str) -> dict[str, Any]:
    progress(f"fleet: {count} hosts ({method}): roles and stores")
    roles = [f"fleet{count}_{method.replace('-', '_')}_{i}" for i in range(count)]
    add_host_roles(srv, roles)
    template = fleet_template(work)
    level = work / f"fleet-{count}-{method}"
    level.mkdir()
    hosts = []
    for i, role in enumerate(roles):
        copy_store(template, level / f"{role}.db")
        hosts.append({"db": str(level / f"{role}.db"), "state": str(level / f"{role}.state"),
                      "url": srv.url(role), "offset": WINDOW_S * i / count,
                      "method": method})
    start = time.time() + 2
    feed = [Child({"mode": "feed", "hosts": hosts[k::feeders], "rows": rate, "seed": k,
                   "start": start}) for k in range(min(feeders, count))]
    ship = [Child({"mode": "fleet", "hosts": hosts[k::workers]})
            for k in range(min(workers, count))]
    for child in ship:        # every sink has its state file and its first round ahead
        child.read()
    progress(f"fleet: {count} hosts: warm-up {warmup:.0f} s, then {duration:.0f} s measured")
    time.sleep(warmup + max(0.0, start - time.time()))
    cpu0 = server_cpu_s(srv)
    t0, first = sample_fleet(hosts)
    time.sleep(duration / 2)
    _, middle = sample_fleet(hosts)
    time.sleep(max(0.0, t0 + duration - time.time()))
    t1, last = sample_fleet(hosts)
    server_cpu = server_cpu_s(srv) - cpu0
    feed_acc = [c.finish() for c in feed]
    ship_acc = [c.finish() for c in ship]
    return {"method": method, **summarise_fleet(count, rate, t1 - t0, first, middle, last,
                                                server_cpu, feed_acc, ship_acc)}


def summarise_fleet(count: int, rate: int, seconds: float, first: list[HostLag],
                    middle: list[HostLag], last: list[HostLag], server_cpu: float,
                    feed: list[dict[str, Any]], ship: list[dict[str, Any]]) -> dict[str, Any]:
    # A host's lag saws up and down by a window's rows (written at once) and the sink's 5 s
    # interval: growing means more than that between start and end, and at the middle too.
    allowance = rate * 1.5
    per_host = [(b.shipped - a.shipped) / seconds for a, b in zip(first, last)]
    growing = sum(1 for a, m, b in zip(first, middle, last)
                  if b.behind - a.behind > allowance and m.behind - a.behind > allowance / 2)
    offered = sum(b.written - a.written for a, b in zip(first, last)) / seconds
    accepted = sum(per_host)
    return {
        "hosts": count, "seconds": round(seconds, 1), "target_rows_per_s": count * rate / WINDOW_S,
        "offered_rows_per_s": round(offered), "accepted_rows_per_s": round(accepted),
        "per_host_rows_per_s_min": round(min(per_host), 1),
        "per_host_rows_per_s_median": round(statistics.median(per_host), 1),
        "lag_start_rows_median": statistics.median(a.behind for a in first),
        "lag_start_rows_max": max(a.behind for a in first),
        "lag_end_rows_median": statistics.median(b.behind for b in last),
        "lag_end_rows_max": max(b.behind for b in last),
        "lag_start_rows_total": sum(a.behind for a in first),
        "lag_end_rows_total": sum(b.behind for b in last), "window_rows": rate,
        "hosts_lag_growing": growing,
        "server_cpu_share_pct": round(100 * server_cpu / seconds, 1),
        "sinks_cpu_s": round(sum(s["cpu_s"] for s in ship), 1),
        "sinks_peak_rss_mib_max": max(s["peak_rss_mib"] for s in ship),
        "sink_errors": sum(s["errors"] for s in ship),
        "feeders_most_late_s": max(f["most_late_s"] for f in feed),
        "feeders_cpu_s": round(sum(f["cpu_s"] for f in feed), 1)}


def measure_fleet(counts: Sequence[int], rate: int, duration: float, warmup: float,
                  workers: int, feeders: int, work: Path,
                  methods: Sequence[str]) -> list[dict[str, Any]]:
    srv = start_server("postgresql", max_connections=max(counts) + 100)
    results = []
    try:
        for count, method in [(c, m) for c in counts for m in methods]:
            result = run_fleet_level(srv, count, rate, duration, warmup, workers, feeders, work,
                                     method)
            progress(f"fleet: {count} hosts ({method}): accepted "
                     f"{result['accepted_rows_per_s']:,} of "
                     f"{result['offered_rows_per_s']:,} rows/s offered; lag end max "
                     f"{result['lag_end_rows_max']:,} rows; growing: "
                     f"{result['hosts_lag_growing']}")
            results.append(result)
    finally:
        srv.remove()
    return results


def saturation(all_levels: list[dict[str, Any]], method: str) -> str:
    """The first host count where some host's lag grows or the fleet falls behind what was
    written by more than a window per host (one sample's noise); or where this machine could
    not even write the fleet's rows on time (then the server's limit was not reached)."""
    levels = [level for level in all_levels if level["method"] == method]
    kept_up = "not measured"
    for level in levels:
        behind = level["offered_rows_per_s"] - level["accepted_rows_per_s"]
        slack = level["hosts"] * level["window_rows"] / level["seconds"]
        if level["feeders_most_late_s"] > WINDOW_S or \
                level["offered_rows_per_s"] < 0.9 * level["target_rows_per_s"]:
            return (f"{kept_up}; at {level['hosts']} hosts this machine could not simulate the "
                    f"fleet: the feeders wrote {level['offered_rows_per_s']:,} of "
                    f"{level['target_rows_per_s']:,.0f} rows/s (up to "
                    f"{level['feeders_most_late_s']:.0f} s late) and the sinks accepted "
                    f"{level['accepted_rows_per_s']:,} rows/s, the server using "
                    f"{level['server_cpu_share_pct']:.0f}% of a CPU")
        if level["hosts_lag_growing"] or behind > slack:
            return (f"saturated at {level['hosts']} hosts: {level['accepted_rows_per_s']:,} "
                    f"rows/s accepted of {level['offered_rows_per_s']:,} written, "
                    f"{level['hosts_lag_growing']} hosts' lag growing")
        kept_up = f"kept up with {level['hosts']} hosts"
    return kept_up


# ---- report ----

def render(report: dict[str, Any]) -> str:
    lines = [f"{report['date']}, {report['machine']}",
             f"store: {report['rows']:,} flow rows ({report['store_rows']:,} shipped rows in all "
             f"tables), batch_rows {BATCH_ROWS}; speed-up: median over slices of "
             f"rows/s against per-row on the same slice [bootstrap 95%]"]
    for kind, result in report["throughput"].items():
        lines += ["", f"{kind}: throughput",
                  f"{'method':9} {'rows/s':>9} {'x per-row':>9} {'95% interval':>14} "
                  f"{'seconds':>8} {'sink CPU s':>10} {'peak RSS MiB':>12} {'server CPU s':>12}"]
        for method, r in result.items():
            ci = f"[{r['speedup_ci95'][0]:.1f}, {r['speedup_ci95'][1]:.1f}]"
            lines.append(f"{method:9} {r['rows_per_s']:9,} {r['speedup_median'] or 0:9.1f} "
                         f"{ci:>14} {r['seconds']:8.1f} {r['sink_cpu_s']:10.1f} "
                         f"{r['sink_peak_rss_mib']:12.1f} {r['server_cpu_s']:12.1f}")
    for kind, replays in report["replay"].items():
        lines += ["", f"{kind}: replay after an outage",
                  f"{'method':9} {'backlog':>8} {'outage s':>8} {'catch-up s':>10} {'rows/s':>8} "
                  f"{'up->caught up s':>15} {'sink CPU s':>10} {'peak RSS MiB':>12}"]
        for r in replays:
            lines.append(f"{r['method']:9} {r['backlog_rows']:8,} {r['outage_s']:8.0f} "
                         f"{r['catch_up_s']:10.1f} {r['rows_per_s']:8,} "
                         f"{r['server_up_to_caught_up_s']:15.1f} {r['sink_cpu_s']:10.1f} "
                         f"{r['sink_peak_rss_mib']:12.1f}")
    if report["fleet"]:
        lines += fleet_lines(report)
    return "\n".join(lines)


def fleet_lines(report: dict[str, Any]) -> list[str]:
    lines = ["", f"fleet on one PostgreSQL: each host {report['host_rate']} rows per "
             f"{WINDOW_S} s window ({report['host_rate'] / WINDOW_S:.0f} rows/s), "
             f"{report['fleet_workers']} sink processes, {report['feeders']} feeder processes",
             f"{'method':8} {'hosts':>5} {'target/s':>9} {'offered/s':>9} {'accepted/s':>10} "
             f"{'per host min/med':>16} {'lag start med/max':>17} {'lag end med/max':>15} "
             f"{'growing':>7} {'server CPU':>10} {'feeder late s':>13}"]
    for f in report["fleet"]:
        lines.append(
            f"{f['method']:8} {f['hosts']:5} {f['target_rows_per_s']:9,.0f} "
            f"{f['offered_rows_per_s']:9,} "
            f"{f['accepted_rows_per_s']:10,} "
            f"{f['per_host_rows_per_s_min']:7.1f}/{f['per_host_rows_per_s_median']:<8.1f} "
            f"{f['lag_start_rows_median']:8,.0f}/{f['lag_start_rows_max']:<8,} "
            f"{f['lag_end_rows_median']:7,.0f}/{f['lag_end_rows_max']:<7,} "
            f"{f['hosts_lag_growing']:7} {f['server_cpu_share_pct']:9.0f}% "
            f"{f['feeders_most_late_s']:13.1f}")
    lines += [f"saturation ({method}): {text}" for method, text in report["saturation"].items()]
    return lines


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), "unknown CPU")
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // 1024
    return f"{os.cpu_count()} CPUs ({model}), {mem:,} MiB, kernel {os.uname().release}"


def parse_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="flow rows in the store phase 1 ships (default 1,000,000)")
    parser.add_argument("--backlog", type=int, default=500_000,
                        help="rows written during the outage of phase 2 (default 500,000)")
    parser.add_argument("--outage", type=float, default=20.0,
                        help="seconds the server is down in phase 2 (default 20)")
    parser.add_argument("--hosts", default="1,10,100",
                        help="simulated host counts of phase 3 (default 1,10,100; 1000 takes "
                             "longer than this machine's budget, add it to try)")
    parser.add_argument("--duration", type=float, default=60.0,
                        help="measured seconds per host count in phase 3 (default 60)")
    parser.add_argument("--warmup", type=float, default=15.0,
                        help="seconds before measuring each host count (default 15)")
    parser.add_argument("--host-rate", type=int, default=BUSY_ROWS_PER_WINDOW,
                        help=f"flow rows per {WINDOW_S} s window of one simulated host "
                             f"(default {BUSY_ROWS_PER_WINDOW}, a busy host)")
    parser.add_argument("--fleet-workers", type=int, default=4,
                        help="sink processes serving the simulated hosts (default 4)")
    parser.add_argument("--feeders", type=int, default=2,
                        help="processes writing the simulated hosts' windows (default 2)")
    parser.add_argument("--fleet-methods", default="sink",
                        help="how the simulated hosts' sinks insert (default sink; e.g. "
                             "sink,staged measures each host count with both, one after the "
                             "other)")
    parser.add_argument("--servers", default="postgresql,mariadb",
                        help="phases 1 and 2 on these servers (default postgresql,mariadb)")
    parser.add_argument("--variants", default="staged,pipeline,onestmt",
                        help="designs measured beside the sink (staged, pipeline: PostgreSQL; "
                             "onestmt: MariaDB); '' for none")
    parser.add_argument("--chunks", type=int, default=10,
                        help="slices the methods ship in turn in phase 1 (default 10)")
    parser.add_argument("--phases", default="throughput,replay,fleet",
                        help="which phases to run (default all)")
    parser.add_argument("--json", type=Path, help="write the report as JSON here too")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = arguments()
    # Stopped with SIGTERM: still stop the servers and remove the temporary files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.child:
        spec_file = Path(args.child)
        spec = json.loads(spec_file.read_text())
        spec_file.unlink()
        return child_main(spec)
    phases, variants = set(parse_list(args.phases)), parse_list(args.variants)
    work = Path(tempfile.mkdtemp(prefix="netwarden-sink-bench-"))
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": machine(),
        "rows": args.rows, "store_rows": 0, "throughput": {}, "replay": {}, "fleet": [],
        "host_rate": args.host_rate, "fleet_workers": args.fleet_workers,
        "feeders": args.feeders, "saturation": {}}
    try:
        run_phases(args, phases, variants, work, report)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def run_phases(args: argparse.Namespace, phases: set[str], variants: list[str], work: Path,
               report: dict[str, Any]) -> None:
    store = work / "store.db"
    if "throughput" in phases:
        progress(f"writing {args.rows:,} flow rows with SqliteWriter")
        write_store(store, args.rows, FlowMix(1), int(time.time()) - 30 * 86400)
        report["store_rows"] = sum(store_rows(store).values())
    for kind in parse_list(args.servers) if phases & {"throughput", "replay"} else []:
        extra = [v for v in variants if v in METHODS_FOR[kind]]
        srv = start_server(kind)
        try:
            if "throughput" in phases:
                progress(f"{kind}: shipping {args.rows:,} rows: sink, per-row, {extra}")
                report["throughput"][kind] = measure_throughput(
                    srv, store, ["sink", "per-row", *extra], args.chunks, args.rows, work)
            if "replay" in phases:
                report["replay"][kind] = [measure_replay(srv, m, args.backlog, args.outage, work)
                                          for m in ["sink", *extra]]
        finally:
            srv.remove()
    if "fleet" in phases:
        counts = [int(n) for n in parse_list(args.hosts)]
        methods = parse_list(args.fleet_methods)
        report["fleet"] = measure_fleet(counts, args.host_rate, args.duration, args.warmup,
                                        args.fleet_workers, args.feeders, work, methods)
        report["saturation"] = {m: saturation(report["fleet"], m) for m in methods}


if __name__ == "__main__":
    sys.exit(main())
