"""`netwarden sink`: ship the store to PostgreSQL or MariaDB/MySQL, and its admin helpers.

    netwarden sink [--user NAME] [--once]        the shipping process (unprivileged)
    netwarden sink --status [--json]             state, lag, last error
    netwarden sink --print-schema DIALECT        SQL for the administrator: the tables
    netwarden sink --print-grants DIALECT        ... the roles: one per host, one reader
    netwarden sink --init-schema --admin-url URL create or migrate the server's schema
    netwarden sink --maintain-partitions --admin-url URL [--keep-days N]

No database driver is imported while the process is root: started as root, shipping and
--init-schema refuse unless given --user NAME, become that user, prove it (setuid(0) fails)
and only then import psycopg or PyMySQL. --status and --print-* import no driver.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import socket
import sys
import time
from pathlib import Path

from netwarden.cmdline import AddCommand, config_of, number
from netwarden.config import Config, ConfigError, RemoteConfig, parse_remote_url
from netwarden.exits import EXIT_CONFIG_ERROR, EXIT_NOPERM, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

DRIVERS = ("psycopg", "pymysql")
log = logging.getLogger("netwarden.sink")


def _fail(message: str, status: int) -> int:
    print(f"netwarden sink: {message}", file=sys.stderr)
    return status


def host_role(remote: RemoteConfig) -> str:
    """The login role of this host: [remote] host_name, else the URL's user, else hostname."""
    if remote.host_name:
        return remote.host_name
    if remote.url:
        user = parse_remote_url(remote.url).user
        if user:
            return user
    return socket.gethostname()


def _target(remote: RemoteConfig):  # noqa: ANN202 - RemoteTarget
    """The host role's target: [remote] url and password_file."""
    from netwarden.store.remote_db import remote_target
    return remote_target(remote, remote.url, "[remote] password_file", remote.password_file)


def _drop_root(user: str | None) -> int | None:
    """None when this process may import a driver, else the exit status."""
    loaded = [name for name in DRIVERS if name in sys.modules]
    if loaded:
        return _fail(f"{', '.join(loaded)} was imported before dropping root", EXIT_NOPERM)
    from netwarden.privileges import PrivilegeError, become_unprivileged
    try:
        become_unprivileged("netwarden sink", user)
    except PrivilegeError as exc:
        print(str(exc).replace("viewers do not run as root",
                               "the sink does not run as root"), file=sys.stderr)
        return exc.status
    return None


# ---- the administrator's SQL ----

def cmd_print_schema(dialect_name: str) -> int:
    from netwarden.store.dialects import dialect_named
    from netwarden.store.remote_schema import (
        REMOTE_LATEST,
        group_grants,
        schema_statements,
        script,
        version_statement,
    )
    dialect = dialect_named(dialect_name)
    print(f"-- netwarden remote schema version {REMOTE_LATEST} ({dialect.name.value}); "
          "run as the role that will own it (not a host's role)")
    sys.stdout.write(script(schema_statements(dialect) + group_grants(dialect)
                            + [version_statement(dialect)]))
    return EXIT_OK


def cmd_print_grants(dialect_name: str, config: Config, args: argparse.Namespace) -> int:
    from netwarden.store.dialects import dialect_named
    from netwarden.store.remote_schema import login_grants, password_hint, script
    dialect = dialect_named(dialect_name)
    role = args.role or host_role(config.remote)
    database = args.database or (parse_remote_url(config.remote.url).database
                                 if config.remote.url else "netwarden")
    print(f"-- netwarden: login roles for host {role!r} (INSERT only) and reader "
          f"{args.reader_role!r} (SELECT only), database {database!r}")
    sys.stdout.write(script(login_grants(dialect, database, role, args.reader_role)))
    print(password_hint(dialect, role))
    print(password_hint(dialect, args.reader_role))
    return EXIT_OK


def cmd_admin(config: Config, args: argparse.Namespace) -> int:
    """--init-schema or --maintain-partitions, as the administrator's role."""
    from netwarden.sink.admin import apply_schema, maintain_partitions
    from netwarden.store.remote_db import RemoteError
    try:
        from netwarden.store.remote_db import remote_target
        target = remote_target(config.remote, args.admin_url, "--admin-password-file",
                               args.admin_password_file or "")
    except ValueError as exc:       # a bad URL, or ConfigError: an unreadable password file
        return _fail(str(exc) if isinstance(exc, ConfigError) else f"--admin-url: {exc}",
                     EXIT_USAGE)
    try:
        if args.init_schema:
            before, after = apply_schema(target, time.time())
            print(f"the server's netwarden schema is already at version {after}"
                  if before == after else
                  f"the server's netwarden schema: version {before} -> {after}")
        else:
            added, dropped = maintain_partitions(target, time.time(), args.keep_days)
            print(f"months added: {', '.join(m.label for m in added) or 'none'}; "
                  f"dropped: {', '.join(m.label for m in dropped) or 'none'}")
    except RemoteError as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    return EXIT_OK


# ---- status ----

def cmd_status(config: Config, as_json: bool) -> int:
    from netwarden.store.sink_state import read_status
    status = read_status(Path(config.remote.state_path))
    if status is None:
        if as_json:
            print(json.dumps({"state": "never run"}))
        else:
            print(f"the sink has not run yet (no state at {config.remote.state_path})")
        return EXIT_UNAVAILABLE
    if as_json:
        print(json.dumps(status.as_dict(), indent=2))
        return EXIT_OK
    print(render_status(status, time.time()))
    return EXIT_OK if not status.error else EXIT_UNAVAILABLE


def render_status(status, now: float) -> str:
    def ago(when: float) -> str:
        return "never" if not when else f"{now - when:.0f} s ago"
    lines = [f"state:        {status.state} (updated {ago(status.updated)}, pid {status.pid})",
             f"server:       {status.target}",
             f"store:        source_id {status.source_id}",
             f"behind:       {status.behind_rows} rows, {status.behind_s:.0f} s",
             f"last shipped: {ago(status.last_shipped)} ({status.shipped_rows} rows since start)"]
    if status.error:
        lines.append(f"error:        {status.error} (since {ago(status.error_since)}, next try "
                     f"in {max(0.0, status.next_try - now):.0f} s)")
    return "\n".join(lines)


# ---- shipping ----

def cmd_ship(config: Config, args: argparse.Namespace) -> int:
    if not config.remote.url:
        return _fail("no server configured: set [remote] url in the config file "
                     "(see netwarden --help)", EXIT_CONFIG_ERROR)
    refused = _drop_root(args.user)
    if refused is not None:
        return refused
    from netwarden.sink.shipper import Shipper
    from netwarden.stopper import Stopper
    from netwarden.store.remote_db import connect
    from netwarden.store.sink_state import SinkStateFile
    try:
        target = _target(config.remote)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_CONFIG_ERROR)
    stop = Stopper()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop.request)
    state = SinkStateFile(Path(config.remote.state_path))
    shipper = Shipper(config.db_path, state, target, connect, config.remote.batch_rows,
                      heartbeat_s=config.remote.heartbeat_s)
    log.info("shipping %s to %s", config.db_path, target.url.redacted())
    try:
        return shipper.run(stop.is_set, stop.wait, config.remote.interval_s,
                           config.remote.retry_max_s, once=args.once)
    finally:
        state.close()


def cmd_sink(args: argparse.Namespace) -> int:
    config = config_of(args)
    if args.print_schema:
        return cmd_print_schema(args.print_schema)
    if args.print_grants:
        return cmd_print_grants(args.print_grants, config, args)
    if args.status:
        return cmd_status(config, args.json)
    if args.init_schema or args.maintain_partitions:
        if not args.admin_url:
            return _fail("--init-schema and --maintain-partitions need --admin-url URL (a "
                         "role that owns the schema; never a host's role)", EXIT_USAGE)
        refused = _drop_root(args.user)
        if refused is not None:
            return refused
        return cmd_admin(config, args)
    return cmd_ship(config, args)


_days = number(float, "a number of days", 1.0, flag="--keep-days")


def _dialect(text: str) -> str:
    from netwarden.store.dialects import dialect_named
    try:
        dialect_named(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_commands(add: AddCommand) -> None:
    sink = add("sink", cmd_sink,
               "ship the store to a PostgreSQL or MariaDB/MySQL server ([remote] settings): "
               "unprivileged, nothing lost while the server is down, each row once")
    sink.add_argument("--user", metavar="NAME",
                      help="started as root: the user to become first (no database driver "
                           "is ever loaded as root)")
    sink.add_argument("--once", action="store_true",
                      help="ship until caught up, then exit (75 if the server failed)")
    sink.add_argument("--status", action="store_true",
                      help="show the running sink's state, lag (rows and seconds behind) and "
                           "last error")
    sink.add_argument("--json", action="store_true", help="--status as JSON")
    sink.add_argument("--print-schema", type=_dialect, metavar="DIALECT",
                      help="print the server's schema as SQL (postgresql or mariadb)")
    sink.add_argument("--print-grants", type=_dialect, metavar="DIALECT",
                      help="print the SQL creating this host's login role (INSERT only) and a "
                           "reader role (SELECT only)")
    sink.add_argument("--role", metavar="NAME",
                      help="--print-grants: the host's role (default [remote] host_name, the "
                           "URL's user, or this machine's hostname)")
    sink.add_argument("--reader-role", metavar="NAME", default="netwarden_reader",
                      help="--print-grants: the viewers' login role (default netwarden_reader)")
    sink.add_argument("--database", metavar="NAME",
                      help="--print-grants: the database the grants name (default: [remote] url's, "
                           "else netwarden)")
    sink.add_argument("--init-schema", action="store_true",
                      help="create or migrate the server's schema (with --admin-url)")
    sink.add_argument("--maintain-partitions", action="store_true",
                      help="add the coming months' partitions of the server's flow table "
                           "(with --admin-url; run it monthly) and, with --keep-days, drop "
                           "the months that ended before then")
    sink.add_argument("--keep-days", type=_days, metavar="N",
                      help="--maintain-partitions: keep this many days of flows on the server")
    sink.add_argument("--admin-url", metavar="URL",
                      help="--init-schema, --maintain-partitions: an administrator's URL, e.g. "
                           "postgresql://admin@HOST:5432/netwarden")
    sink.add_argument("--admin-password-file", metavar="FILE",
                      help="--init-schema, --maintain-partitions: the administrator's "
                           "password, if one is needed")
