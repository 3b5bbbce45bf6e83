"""The notifier's subcommands: notifier, deliveries, verdicts, mute, unmute.

Registered by ``netwarden.cli.build_parser``; exit statuses are netwarden.exits (sysexits).
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from netwarden.cmdline import AddCommand, positive
from netwarden.config import with_db_path
from netwarden.exits import EXIT_IOERR, EXIT_NOPERM, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

log = logging.getLogger("netwarden.notify")

Row = TypeVar("Row")


def _err(text: str) -> None:
    print(f"netwarden: {text}", file=sys.stderr)


def _preimport() -> None:
    """Load every module of ours (and the standard library's they use) while root.

    After the drop the interpreter's own tree may be unreadable (a root-only install path);
    what is loaded now keeps working. No third-party module is among these: jeepney and paho
    are imported by the channels on first use, as the user.
    """
    import netwarden.notify.desktop  # noqa: F401
    import netwarden.notify.http_channels  # noqa: F401
    import netwarden.notify.mqtt  # noqa: F401
    import netwarden.notify.report  # noqa: F401
    import netwarden.notify.service  # noqa: F401
    import netwarden.notify.settings  # noqa: F401
    import email.parser, encodings.idna, http.client, ssl, urllib.request  # noqa: E401, F401


def _become_user(args: argparse.Namespace) -> int:
    """Drop root when asked to serve a user; refuse root otherwise. Returns an exit status."""
    from netwarden.privileges import PrivilegeError, drop_privileges
    if os.geteuid() != 0:
        if args.user and args.user != getpass.getuser():
            _err(f"notifier: only root can serve another user's session (--user {args.user})")
            return EXIT_NOPERM
        return EXIT_OK
    if not args.user:
        _err("notifier: refusing to run as root: it serves one desktop user's session. Run it "
             "as that user (systemctl --user start netwarden-notifier), or pass --user NAME "
             "to drop to that user")
        return EXIT_NOPERM
    _preimport()
    try:
        account = drop_privileges(args.user, args.bus)
    except (PrivilegeError, OSError) as exc:
        _err(f"notifier: cannot drop privileges: {exc}")
        return EXIT_NOPERM
    log.info("privileges dropped to %s (uid %d, gid %d); setuid(0) now fails", account.pw_name,
             account.pw_uid, account.pw_gid)
    return EXIT_OK


def _state_path(args: argparse.Namespace) -> Path:
    from netwarden.notify.settings import state_path
    return args.state or state_path()


def _open_existing_state(args: argparse.Namespace):  # noqa: ANN202 - NotifierState
    from netwarden.store.notifier_state import NotifierState
    path = _state_path(args)
    if not path.exists():
        _err(f"no notifier state at {path}: the notifier has not run as this user "
             "(pass --state PATH to read another)")
        return None
    return NotifierState(path)


def cmd_notifier(args: argparse.Namespace) -> int:
    if args.status:
        return _status(args)
    status = _become_user(args)
    if status != EXIT_OK:
        return status
    from netwarden.mutes import default_mutes_path
    from netwarden.notify.service import Notifier, channels_from_config, virustotal_from_config
    from netwarden.notify.settings import load_notifier_config, read_secrets
    from netwarden.stopper import Stopper
    config = with_db_path(load_notifier_config(args.config, args.user_config), args.db)
    secrets = read_secrets(config)
    stop = Stopper()
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, stop.request)
    notifier = Notifier(config, config.db_path, _state_path(args),
                        args.mutes or default_mutes_path(),
                        channels_from_config(config, secrets, args.bus, socket.gethostname()),
                        virustotal_from_config(config, secrets))
    notifier.run(stop, ready=lambda: log.info("ready"))
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    from netwarden.notify.report import status_lines
    state = _open_existing_state(args)
    if state is None:
        return EXIT_UNAVAILABLE
    counts = state.delivery_counts()
    failures = {channel: state.last_failure(channel) for channel in counts}
    for line in status_lines(state.all_meta(), counts, failures, state.counters(),
                             state.verdict_counts(), time.time()):
        print(line)
    state.close()
    return EXIT_OK


def _print_state_rows(args: argparse.Namespace, read: Callable[[Any], Sequence[Row]],
                      record: Callable[[Row], dict[str, object]],
                      lines: Callable[[Sequence[Row]], list[str]], empty: str) -> int:
    """Rows read from the notifier's state: one JSON object each (--json), else as text."""
    state = _open_existing_state(args)
    if state is None:
        return EXIT_UNAVAILABLE
    rows = read(state)
    if args.json:
        for row in rows:
            print(json.dumps(record(row), ensure_ascii=False))
    else:
        print("\n".join(lines(rows)) if rows else empty)
    return EXIT_OK


def cmd_deliveries(args: argparse.Namespace) -> int:
    from netwarden.notify.report import delivery_lines, delivery_record
    return _print_state_rows(args, lambda state: state.recent(args.limit, args.channel),
                             delivery_record, delivery_lines, "no deliveries yet")


def cmd_verdicts(args: argparse.Namespace) -> int:
    from netwarden.notify.report import verdict_lines, verdict_record
    return _print_state_rows(args, lambda state: state.verdicts(args.limit), verdict_record,
                             verdict_lines, "no VirusTotal verdicts yet")


def _edit_mutes(args: argparse.Namespace, add: bool) -> int:
    from netwarden.mutes import (
        MuteFileError, UnknownKind, add_mutes, default_mutes_path, load_mutes, remove_mutes,
    )
    path = args.file or default_mutes_path()
    try:
        if args.programs or args.kinds:
            edit = add_mutes if add else remove_mutes
            mutes = edit(path, programs=args.programs, kinds=args.kinds or ())
        else:
            mutes = load_mutes(path)
    except UnknownKind as exc:
        _err(str(exc))
        return EXIT_USAGE
    except MuteFileError as exc:
        _err(str(exc))
        return EXIT_IOERR
    print(f"# {path}")
    for program in sorted(mutes.programs):
        print(f"program {program}")
    for kind in sorted(mutes.kinds):
        print(f"kind {kind}")
    return EXIT_OK


def cmd_mute(args: argparse.Namespace) -> int:
    return _edit_mutes(args, add=True)


def cmd_unmute(args: argparse.Namespace) -> int:
    return _edit_mutes(args, add=False)


def _state_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state", type=Path, metavar="PATH",
                        help="the notifier's state file (default "
                             "$XDG_STATE_HOME/netwarden/notifier.db)")


def add_commands(add: AddCommand) -> None:
    """Register the subcommands through cli.build_parser's ``add`` helper."""
    from netwarden.model.kinds import MUTABLE_KINDS
    notifier = add("notifier", cmd_notifier,
                   "follow new events and raise desktop notifications (run as the desktop user)")
    notifier.add_argument("--user-config", type=Path, metavar="PATH",
                          help="the user's settings, which win over --config (default "
                               "$XDG_CONFIG_HOME/netwarden/config.toml)")
    _state_option(notifier)
    notifier.add_argument("--mutes", type=Path, metavar="PATH",
                          help="the mute list (default $XDG_CONFIG_HOME/netwarden/mutes.toml)")
    notifier.add_argument("--bus", metavar="ADDRESS",
                          help="D-Bus session bus address (default $DBUS_SESSION_BUS_ADDRESS; "
                               "with --user, unix:path=/run/user/UID/bus)")
    notifier.add_argument("--user", metavar="NAME",
                          help="when started as root: the user whose session to serve; root "
                               "is dropped for good before anything else")
    notifier.add_argument("--status", action="store_true",
                          help="print the running notifier's state and delivery outcomes, "
                               "then exit")
    deliveries = add("deliveries", cmd_deliveries,
                     "print recent notification deliveries and their outcomes", config=False)
    _state_option(deliveries)
    deliveries.add_argument("--limit", type=positive, default=20, metavar="N")
    deliveries.add_argument("--channel", choices=("desktop", "webhook", "mqtt", "ntfy"))
    deliveries.add_argument("--json", action="store_true", help="one JSON object per line")
    verdicts = add("verdicts", cmd_verdicts, "print VirusTotal verdicts on new executables",
                   config=False)
    _state_option(verdicts)
    verdicts.add_argument("--limit", type=positive, default=50, metavar="N")
    verdicts.add_argument("--json", action="store_true", help="one JSON object per line")
    kinds_help = "; ".join(f"{k}: {v}" for k, v in MUTABLE_KINDS.items())
    for name, func, verb in (("mute", cmd_mute, "mute"), ("unmute", cmd_unmute, "unmute")):
        p = add(name, func, f"{verb} notifications by program or kind (no argument: list "
                            "the mutes)", config=False)
        p.add_argument("programs", nargs="*", metavar="PROGRAM",
                       help="an executable's path, or a program name without '/'")
        p.add_argument("--kind", dest="kinds", action="append", metavar="KIND",
                       choices=tuple(MUTABLE_KINDS), help=f"an event kind ({kinds_help})")
        p.add_argument("--file", type=Path, metavar="PATH",
                       help="the mute list (default $XDG_CONFIG_HOME/netwarden/mutes.toml)")
