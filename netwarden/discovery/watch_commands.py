"""`netwarden watch`: the connectivity watch from the command line.

    netwarden watch once [--json]     probe every target in its schedule once and print it
    netwarden watch run               the watch alone (as `netwarden discovery` runs it)
    netwarden watch status [--json]   each target's state, uptime and latency from the store
    netwarden watch outages [--json]  the recorded outages (down windows)

``--once`` is short for ``once``. `once` exits 0 when every probed target answered, 69
(EX_UNAVAILABLE) when one did not.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import signal
import sys
import threading
import time

from netwarden.cmdline import AddCommand, config_of, epoch
from netwarden.config import Config
from netwarden.exits import EXIT_IOERR, EXIT_NOPERM, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE
from netwarden.stopper import Stopper

log = logging.getLogger("netwarden.watch")


def _fail(message: str, status: int) -> int:
    print(f"netwarden watch: {message}", file=sys.stderr)
    return status


def _clock(value: float | None) -> str:
    return "-" if value is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(value))


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.2f}%"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def cmd_once(config: Config, as_json: bool) -> int:
    from netwarden.discovery.probes import run_probe
    from netwarden.model.schedule import parse_schedule
    targets = config.watch.targets()
    if not targets:
        return _fail("no [[watch.target]] in the configuration", EXIT_USAGE)
    failed = False
    local = dt.datetime.now().astimezone()
    for target in targets:
        record: dict[str, object] = {"target": target.name, "probe": str(target.probe),
                                     "group": target.group}
        if parse_schedule(target.schedule).expected_since(local) is None:
            record.update(state="unscheduled", latency_ms=None, reason="outside its schedule")
        else:
            result = run_probe(target)
            failed |= not result.ok
            record.update(state="up" if result.ok else "down", reason=result.reason,
                          latency_ms=None if result.latency_s is None
                          else round(result.latency_s * 1000, 3))
        if as_json:
            print(json.dumps(record, ensure_ascii=False))
        else:
            latency = record["latency_ms"]
            shown = _ms(latency) if isinstance(latency, float) else record["reason"]
            print(f"{target.name:<20} {str(target.probe):<40} {record['state']:<11} {shown}")
    return EXIT_UNAVAILABLE if failed else EXIT_OK


def open_watch_writer(config: Config) -> object:
    """The store's watch writer, or an exit status after saying why it cannot be opened."""
    from netwarden.store.watch_writer import WatchWriter
    try:
        return WatchWriter(config.db_path, time.time(), config.store.group or None,
                           config.store.owner or None)
    except PermissionError as exc:
        return _fail(f"cannot write {config.db_path}: {exc.strerror} (run as the database's "
                     f"owner, user '{config.store.owner}', or root)", EXIT_NOPERM)


def start_watch_thread(config: Config, stop: Stopper) -> threading.Thread | None:
    """The watch as a thread of another service (discovery); None without targets."""
    from netwarden.discovery.watch import Watcher
    from netwarden.store.watch_writer import WatchWriter
    if not config.watch.target:
        return None

    def run() -> None:
        try:
            writer = WatchWriter(config.db_path, time.time(), config.store.group or None,
                                 config.store.owner or None)
            try:
                Watcher(config.watch, writer, stop).run()
            finally:
                writer.close()
        except Exception:  # noqa: BLE001 - said in the log; discovery's passes go on
            log.exception("the connectivity watch stopped")
    thread = threading.Thread(target=run, name="watch", daemon=True)
    thread.start()
    return thread


def cmd_run(config: Config) -> int:
    from netwarden.discovery.watch import Watcher
    if not config.watch.target:
        return _fail("no [[watch.target]] in the configuration", EXIT_USAGE)
    stop = Stopper()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop.request)
    writer = open_watch_writer(config)
    if isinstance(writer, int):
        return writer
    try:
        Watcher(config.watch, writer, stop).run()  # type: ignore[arg-type]
    finally:
        writer.close()  # type: ignore[attr-defined]
    return EXIT_OK


def _reader(config: Config) -> object:
    from netwarden.store.sqlite_db import open_readonly
    from netwarden.store.watch_queries import has_watch_tables
    conn = open_readonly(config.db_path)
    if not has_watch_tables(conn):
        return _fail("the database has no watch tables yet (written by an older netwarden); "
                     "run `netwarden discovery` or `netwarden watch run` once", EXIT_IOERR)
    return conn


def cmd_status(config: Config, as_json: bool) -> int:
    from netwarden.store.watch_queries import statuses
    conn = _reader(config)
    if isinstance(conn, int):
        return conn
    for row in statuses(conn, time.time()):  # type: ignore[arg-type]
        if as_json:
            print(json.dumps(row.as_record(), ensure_ascii=False))
            continue
        name = f"{row.name} (group)" if row.is_group else row.name
        print(f"{name:<24} {row.state:<8} since {_clock(row.since)}  "
              f"day {_percent(row.uptime_day):>8}  week {_percent(row.uptime_week):>8}  "
              f"last {_ms(row.last_latency_ms)}  avg {_ms(row.avg_latency_ms)}  {row.probe}")
    return EXIT_OK


def cmd_outages(config: Config, as_json: bool, since: float) -> int:
    from netwarden.store.watch_queries import outages
    conn = _reader(config)
    if isinstance(conn, int):
        return conn
    now = time.time()
    for outage in outages(conn, since):  # type: ignore[arg-type]
        if as_json:
            print(json.dumps(outage.as_record(), ensure_ascii=False))
            continue
        end = "still down" if outage.end is None else _clock(outage.end)
        print(f"{outage.name:<20} {_clock(outage.start)} -> {end:<19} "
              f"{outage.duration(now):8.1f} s  {outage.reason}")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    config = config_of(args)
    action = "once" if args.once else args.action
    if action == "once":
        return cmd_once(config, args.json)
    if action == "run":
        return cmd_run(config)
    if action == "outages":
        return cmd_outages(config, args.json, args.since)
    return cmd_status(config, args.json)


def add_commands(add: AddCommand) -> None:
    watch = add("watch", cmd_watch,
                "the connectivity watch: probe [[watch.target]]s once, run the watch alone, "
                "or show targets' state, uptime, latency and outages from the store")
    watch.add_argument("action", nargs="?", default="status",
                       choices=("status", "outages", "once", "run"),
                       help="status (default): state, uptime per day and week, latency; "
                            "outages: the down windows; once: probe every target now and "
                            "print it (exit 69 if one failed); run: the watch alone, "
                            "writing the store (`netwarden discovery` runs it too)")
    watch.add_argument("--once", action="store_true", help="the same as `watch once`")
    watch.add_argument("--json", action="store_true", help="one JSON record per line")
    watch.add_argument("--since", type=epoch, default=0.0, metavar="EPOCH",
                       help="outages: those still going at or after this time")
