"""`netwarden fleet`: the hosts shipping to one server, and the silent-host watcher.

    netwarden fleet hosts [--db URL] [--json]     each host: last heartbeat, lag, state
    netwarden fleet watch [--db URL] [--once]     host_silent / host_back, as they happen

Both read the server as a reader role ([fleet] url or --db URL; the password from [remote]
reader_password_file). `watch` prints each event as a JSON line and records it in a store of
its own ([fleet] events_db), which `netwarden notifier --db PATH` reads like the sensor's: the
same channels, cooldowns and flood control deliver them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import time
from pathlib import Path

from netwarden.cmdline import AddCommand, config_of
from netwarden.config import Config, ConfigError
from netwarden.exits import EXIT_OK
from netwarden.model.schedule import Schedule, ScheduleError, parse_schedule
from netwarden.user_dirs import state_dir


def schedules(config: Config) -> dict[str, Schedule]:
    """[fleet] schedules, "HOST=SPEC" each; ConfigError names the bad entry."""
    parsed = {}
    for entry in config.fleet.schedules:
        host, sep, spec = entry.partition("=")
        try:
            if not sep or not host.strip():
                raise ScheduleError("must be HOST=SCHEDULE, e.g. \"laptop=Mon-Fri 08:00-18:00\"")
            parsed[host.strip()] = parse_schedule(spec)
        except ScheduleError as exc:
            raise ConfigError("", "[fleet] schedules", entry, str(exc)) from None
    return parsed


def events_db(config: Config) -> Path:
    if config.fleet.events_db:
        return Path(config.fleet.events_db)
    return state_dir() / "fleet.db"


def _server(args: argparse.Namespace, config: Config, program: str):  # noqa: ANN202
    url = getattr(args, "db_url", None) or config.fleet.url
    if not url:
        raise ConfigError("", "[fleet] url", "", "names no server: set it, or pass --db URL "
                          "(a reader role, e.g. postgresql://READER@HOST:5432/netwarden)")
    from netwarden.reading import open_source
    return open_source(config, url, program, getattr(args, "user", None))


def cmd_hosts(args: argparse.Namespace) -> int:
    config = config_of(args)
    source = _server(args, config, "netwarden fleet hosts")
    from netwarden.store.fleet_queries import fleet_hosts
    try:
        hosts = fleet_hosts(source)
    finally:
        source.close()
    now = time.time()
    if args.json:
        for host in hosts:
            print(json.dumps(dict(host._asdict(), silent_s=round(now - host.last_heartbeat))))
        return EXIT_OK
    if not hosts:
        print("no host has sent a heartbeat to this server yet")
    for host in hosts:
        error = f"  error: {host.error}" if host.error else ""
        print(f"{host.host:24} heard {now - host.last_heartbeat:7.0f} s ago  {host.state:10} "
              f"behind {host.behind_rows} rows / {host.behind_s:.0f} s{error}")
    return EXIT_OK


def cmd_watch(args: argparse.Namespace) -> int:
    config = config_of(args)
    by_host = schedules(config)
    target = events_db(config)
    source = _server(args, config, "netwarden fleet watch")     # drops root first
    from netwarden.fleet.watch import silent_hosts, transitions
    from netwarden.stopper import Stopper
    from netwarden.store.export_queries import export_events
    from netwarden.store.fleet_queries import fleet_hosts
    from netwarden.store.read_source import local_source
    from netwarden.store.sqlite_db import open_readonly
    from netwarden.store.sqlite_writer import SqliteWriter
    store = SqliteWriter(target, int(time.time()), group=None)
    history = local_source(open_readonly(target))
    silent = silent_hosts((e.kind, e.fields) for e, _host in export_events(history))
    history.close()
    stop = Stopper()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop.request)
    try:
        while not stop.is_set():
            now = dt.datetime.now().astimezone()
            events = transitions(fleet_hosts(source), silent, by_host, config.fleet.grace_s, now)
            if events:
                store.write([], events, [], int(now.timestamp()))
            for event in events:
                print(json.dumps({"time": event.time, "kind": event.kind.value,
                                  **event.field_dict()}), flush=True)
            if args.once:
                break
            stop.wait(config.fleet.check_s)
    finally:
        store.close()
        source.close()
    return EXIT_OK


def cmd_fleet(args: argparse.Namespace) -> int:
    return cmd_watch(args) if args.action == "watch" else cmd_hosts(args)


def add_commands(add: AddCommand) -> None:
    fleet = add("fleet", cmd_fleet,
                "the hosts shipping to one server: `hosts` (last heartbeat, lag, state) and "
                "`watch` (host_silent / host_back, honouring [fleet] schedules)")
    fleet.add_argument("action", choices=("hosts", "watch"))
    fleet.add_argument("--json", action="store_true", help="hosts: one JSON record per host")
    fleet.add_argument("--once", action="store_true", help="watch: look once, then exit")
    fleet.add_argument("--user", metavar="NAME",
                       help="started as root: the user to become first (no database driver "
                            "is loaded as root)")
    fleet.epilog = ("--db takes the server (a reader role), e.g. "
                    "postgresql://READER@HOST:5432/netwarden; default [fleet] url")

