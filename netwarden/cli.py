"""The `netwarden` command: one subcommand per process or task.

Exit statuses follow sysexits.h (netwarden.exits) so service managers and scripts can tell
failures apart: 64 usage, 69 kernel support missing, 74 store I/O, 77 not privileged,
78 configuration. The CLI sits on top: nothing in netwarden imports it.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from netwarden.cmdline import config_of, number
from netwarden.config import (
    DEFAULT_CONFIG_PATH, Config, ConfigError, describe_settings, parse_remote_url, redact_url,
)
from netwarden.exits import (
    EXIT_CONFIG_ERROR, EXIT_IOERR, EXIT_NOPERM, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE,
)

if TYPE_CHECKING:
    from netwarden.store.read_source import ReadSource

log = logging.getLogger("netwarden")


#: The commands that read a fleet's server with ``--db URL``.
READS_SERVERS = ("export", "events", "execs", "health", "report", "fleet", "tui", "dash")


def _db_or_url(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``--db`` names a SQLite file or, with a scheme, a server: split the two."""
    db = getattr(args, "db", None)
    args.db_url = None
    if db is not None and "://" in db:
        if args.command not in READS_SERVERS:
            parser.error(f"--db: `netwarden {args.command}` reads a SQLite file only; a server "
                         f"(--db URL) is read by: {', '.join(READS_SERVERS)}")
        try:
            parse_remote_url(db)
        except ValueError as exc:
            parser.error(f"--db {redact_url(db)}: {exc}")
        args.db, args.db_url = None, db
    elif db is not None:
        args.db = Path(db)


_since = number(float, "epoch seconds", 0.0, flag="--since")
_port = number(int, "a number", 1, 65535, flag="--port")


# ---- sensor ----

def cmd_sensor(args: argparse.Namespace) -> int:
    config = config_of(args)
    if os.geteuid() != 0:
        print("netwarden sensor: needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN) to load "
              "its kernel programs", file=sys.stderr)
        return EXIT_NOPERM
    if args.unpin:
        return _unpin(config)
    # Handlers first: a SIGTERM while the hooks load still ends in an orderly stop.
    from netwarden.stopper import Stopper
    stop = Stopper()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop.request)
    from netwarden.model import Event, EventKind
    from netwarden.sensor.loader import LoadFailure
    from netwarden.sensor.service import Sensor
    from netwarden.store.sqlite_writer import SqliteWriter
    try:
        store = SqliteWriter(config.db_path, int(time.time()), config.store.group or None,
                             owner=config.store.owner or None)
    except Exception as exc:
        print(f"netwarden sensor: cannot open the store {config.db_path}: {exc}",
              file=sys.stderr)
        return EXIT_IOERR
    sensor = Sensor(config)
    sensor.keep_pinned = args.keep_pinned
    try:
        sensor.load_hooks()
    except (LoadFailure, OSError) as exc:
        print(f"netwarden sensor: {exc}", file=sys.stderr)
        store.write([], [Event.of(time.time(), EventKind.SENSOR_ERROR, component="sensor",
                                  state="not started", message=str(exc), required=True)],
                    [], int(time.time()))
        store.close()
        return EXIT_UNAVAILABLE
    for status in sensor.program_statuses:
        level = logging.WARNING if status.is_failure else logging.INFO
        log.log(level, "%s/%s: %s %s", status.object_name, status.program, status.state.value,
                status.detail)
    log.info("sensor running; writing to %s every %d s", config.db_path,
             config.sensor.write_interval_s)
    try:
        sensor.run(stop, store, ready=lambda: log.info("ready"))
    finally:
        store.close()
    return EXIT_OK


def _unpin(config: Config) -> int:
    from netwarden.sensor.pinning import PinPlace
    if not config.sensor.pin_root:
        print("netwarden sensor: [sensor] pin_root is empty: nothing is pinned")
        return EXIT_OK
    place = PinPlace.for_store(config.sensor.pin_root, config.db_path)
    removed = place.remove_all()
    print(f"netwarden sensor: removed {len(removed)} pinned set(s) of {config.db_path} "
          f"under {place.base}" + (f": {', '.join(removed)}" if removed else ""))
    return EXIT_OK


# ---- export / events ----

def _open_source(args: argparse.Namespace, program: str):  # noqa: ANN202 - ReadSource
    from netwarden.reading import open_source
    return open_source(config_of(args), getattr(args, "db_url", None), program,
                       getattr(args, "user", None))


def _write_records(records: Iterable[Sequence[object]], fields: Sequence[str], fmt: str) -> None:
    out = sys.stdout
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(fields)
        for record in records:
            writer.writerow(record)
    else:
        for record in records:
            out.write(json.dumps(dict(zip(fields, record, strict=True)), ensure_ascii=False) + "\n")


def _with_host(rows: Iterable[tuple[Sequence[object], str]], remote: bool
               ) -> Iterable[Sequence[object]]:
    """Records as they print: from a server each ends with its host."""
    for record, host in rows:
        yield (*record, host) if remote else record


def cmd_export(args: argparse.Namespace) -> int:
    from netwarden.store.export_queries import EXPORT_FIELDS, export_flows
    source = _open_source(args, "netwarden export")
    fields = EXPORT_FIELDS + ("host",) if source.remote else EXPORT_FIELDS
    try:
        _write_records(_with_host(export_flows(source, int(args.since)), source.remote),
                       fields, args.format)
    finally:
        source.close()
    return EXIT_OK


def _print_json_lines(args: argparse.Namespace, program: str,
                      read: Callable[[ReadSource], Iterable[tuple[dict[str, object], str]]]
                      ) -> int:
    """One JSON object per record; from a server each carries its host."""
    source = _open_source(args, program)
    try:
        for record, host in read(source):
            if source.remote:
                record["host"] = host
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    finally:
        source.close()
    return EXIT_OK


def cmd_events(args: argparse.Namespace) -> int:
    from netwarden.store.export_queries import export_events
    return _print_json_lines(args, "netwarden events", lambda source: (
        (event.as_record(), host) for event, host in export_events(source, args.since)))


def cmd_execs(args: argparse.Namespace) -> int:
    from netwarden.store.export_queries import ExportedExec, export_execs
    source = _open_source(args, "netwarden execs")
    fields = ExportedExec._fields + (("host",) if source.remote else ())
    try:
        _write_records(_with_host(export_execs(source, args.since), source.remote), fields,
                       args.format)
    finally:
        source.close()
    return EXIT_OK


def cmd_health(args: argparse.Namespace) -> int:
    from netwarden.store.export_queries import health_rows
    return _print_json_lines(args, "netwarden health", lambda source: (
        (dict(row._asdict()), host) for row, host in health_rows(source, args.since)))


# ---- viewers ----

def _drop_privileges(program: str, user: str | None) -> int | None:
    """None when this process may go on as a viewer, else the exit status."""
    from netwarden.privileges import PrivilegeError, become_unprivileged
    try:
        become_unprivileged(program, user)
    except PrivilegeError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    return None


def _server(args: argparse.Namespace, config: Config):  # noqa: ANN202 - ServerSource
    """A viewer's --db URL (None: the local store)."""
    url = getattr(args, "db_url", None)
    if url is None:
        return None
    from netwarden.reading import ServerSource
    return ServerSource(url, config.remote)


def cmd_tui(args: argparse.Namespace) -> int:
    config = config_of(args)
    refused = _drop_privileges("netwarden tui", args.user)
    if refused is not None:
        return refused
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        print("netwarden tui: needs a terminal (for data in scripts use `netwarden export` "
              "or the web viewer's /api/v1)", file=sys.stderr)
        return EXIT_USAGE
    from netwarden.view.ranges import TimeRange
    from netwarden.view.units import UnitSystem
    from netwarden.viewer_tui.app import TuiOptions, run_tui
    # Runs after any drop to --user: the TUI's mute list is that user's mutes file.
    return run_tui(TuiOptions(db_path=config.db_path, server=_server(args, config),
                              time_range=TimeRange.parse(config.tui.default_range),
                              live_interval_s=config.tui.live_interval_s,
                              known_devices=config.discovery.known,
                              units=UnitSystem.parse(config.view.units)))


def cmd_dash(args: argparse.Namespace) -> int:
    config = config_of(args)
    host = args.host or config.dash.host
    port = args.port or config.dash.port
    from netwarden.viewer_dash.api import ApiError, check_bind
    try:
        check_bind(host, config.dash.token)
    except ApiError as exc:
        print(f"netwarden dash: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    refused = _drop_privileges("netwarden dash", args.user)
    if refused is not None:
        return refused
    # Dash, Flask and plotly are imported only now, never as root.
    from netwarden.view.units import UnitSystem
    from netwarden.viewer_dash.app import DashSettings
    from netwarden.viewer_dash.serve import BindError, serve
    settings = DashSettings(db_path=config.db_path, token=config.dash.token,
                            geoip_mmdb=config.dash.geoip_mmdb,
                            default_range=config.dash.default_range, top_n=config.dash.top_n,
                            refresh_s=config.dash.refresh_s,
                            metrics_top_n=config.metrics.top_n,
                            known_devices=config.discovery.known,
                            units=UnitSystem.parse(config.view.units),
                            server=_server(args, config))
    try:
        serve(settings, host, port)
    except BindError as exc:
        print(f"netwarden dash: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    return EXIT_OK


# ---- doctor ----

def cmd_doctor(args: argparse.Namespace) -> int:
    from netwarden.sensor.doctor import run_doctor
    report = run_doctor(config_of(args), try_load=not args.no_load)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.render())
    return EXIT_OK if report.ok else EXIT_UNAVAILABLE


# ---- parser ----

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="netwarden",
        description="Which programs on this host talk to the network, how much, to whom.",
        epilog="Settings (TOML, default file %s):\n  " % DEFAULT_CONFIG_PATH
        + "\n  ".join(describe_settings()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, func: Callable[[argparse.Namespace], int], help_text: str,
            config: bool = True) -> argparse.ArgumentParser:  # cmdline.AddCommand
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        if config:
            p.add_argument("--config", type=Path, metavar="PATH",
                           help=f"TOML settings (default {DEFAULT_CONFIG_PATH}, if present)")
            p.add_argument("--db", metavar="PATH",
                           help="the SQLite database (overrides [store] path)")
        return p

    sensor = add("sensor", cmd_sensor, "run the privileged sensor in the foreground (root)")
    pinning = sensor.add_mutually_exclusive_group()
    pinning.add_argument("--keep-pinned", action="store_true",
                         help="on a clean stop leave the pinned programs counting for the "
                              "next start (a restart or upgrade loses nothing); the systemd "
                              "unit uses this")
    pinning.add_argument("--unpin", action="store_true",
                         help="remove this store's pinned programs and maps, then exit "
                              "(what they counted since the last stop is discarded)")
    export = add("export", cmd_export, "print recorded flows, one record per flow row")
    export.add_argument("--format", choices=("jsonl", "csv"), required=True)
    export.add_argument("--since", type=_since, default=0.0, metavar="EPOCH",
                        help="only rows whose window starts at or after this time")
    events = add("events", cmd_events, "print recorded events (new programs, sensor errors)")
    events.add_argument("--format", choices=("jsonl",), default="jsonl")
    events.add_argument("--since", type=_since, default=0.0, metavar="EPOCH")
    execs = add("execs", cmd_execs, "print every exec recorded ([sensor] record_every_exec)")
    execs.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    execs.add_argument("--since", type=_since, default=0.0, metavar="EPOCH")
    health = add("health", cmd_health,
                  "print the sensor's health rows (drops, hook failures), one per counter move")
    health.add_argument("--format", choices=("jsonl",), default="jsonl")
    health.add_argument("--since", type=_since, default=0.0, metavar="EPOCH")
    for reader in (export, events, execs, health):
        reader.add_argument("--user", metavar="NAME",
                            help="with --db URL started as root: the user to become first "
                                 "(no database driver is loaded as root)")
        reader.epilog = ("--db also takes a server, read as a reader role: "
                         "postgresql://READER@HOST:5432/DB or mariadb://READER@HOST/DB "
                         "(password: [remote] reader_password_file); records then carry "
                         "their host")
    user_help = ("started as root: the user to become before the database is opened "
                 "(viewers never run as root)")
    tui = add("tui", cmd_tui, "browse traffic in the terminal (curses; unprivileged)")
    tui.add_argument("--user", metavar="NAME", help=user_help)
    dash_cmd = add("dash", cmd_dash,
                   "serve charts and a JSON API over HTTP (Dash; unprivileged)")
    dash_cmd.add_argument("--host", metavar="ADDR",
                          help="address to bind (default [dash] host, 127.0.0.1); beyond "
                               "loopback needs [dash] token")
    dash_cmd.add_argument("--port", type=_port, metavar="PORT",
                          help="TCP port (default [dash] port, 5100)")
    dash_cmd.add_argument("--user", metavar="NAME", help=user_help)
    doctor = add("doctor", cmd_doctor,
                 "say what this kernel supports, which hooks would be chosen and why")
    doctor.add_argument("--json", action="store_true", help="machine-readable report")
    doctor.add_argument("--no-load", action="store_true",
                        help="only read kernel BTF; do not try loading the programs")
    from netwarden.discovery.commands import add_commands
    add_commands(add)   # scan, discovery, devices, presence, known (LAN discovery)
    from netwarden.discovery.watch_commands import add_commands as add_watch_commands
    add_watch_commands(add)   # netwarden watch (the connectivity watch)
    from netwarden.notify.commands import add_commands as add_notifier_commands
    add_notifier_commands(add)
    from netwarden.sink.commands import add_commands as add_sink_commands
    add_sink_commands(add)
    from netwarden.metrics.commands import add_commands as add_metrics_commands
    add_metrics_commands(add)   # the Prometheus exporter
    from netwarden.fleet.commands import add_commands as add_fleet_commands
    add_fleet_commands(add)
    from netwarden.units.commands import add_commands as add_units_commands
    add_units_commands(add)   # systemd install|uninstall
    from netwarden.reports.commands import add_commands as add_report_commands
    add_report_commands(add)   # netwarden report
    from netwarden.baseline.commands import add_commands as add_baseline_commands
    add_baseline_commands(add)   # baseline learn|status|finish|list|approve|revoke
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _db_or_url(parser, args)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return int(args.func(args))
    except ConfigError as exc:
        print(f"netwarden: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    except BrokenPipeError:
        # The reader went away (`export | head`): not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:
        from netwarden.store.sqlite_db import StoreUnavailable
        if isinstance(exc, StoreUnavailable):
            print(f"netwarden: {exc}", file=sys.stderr)
            return EXIT_IOERR
        raise


if __name__ == "__main__":
    sys.exit(main())
