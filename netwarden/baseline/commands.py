"""`netwarden baseline`: the learning period and the review of the baseline (issue 22).

learn, finish, approve and revoke write the store, as `netwarden known set` does: run them as
the store's owner ([store] owner, the discovery service's user) or root. status and list read
it, as any member of the `netwarden` group may. A bad flag is argparse's exit 2; `finish` when
not learning 64; an id or key the baseline lacks 65 (EX_DATAERR); a store this user cannot
write 77; one that cannot be read 74. Each error is one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

from netwarden.cmdline import AddCommand, config_of, number
from netwarden.config import Config
from netwarden.exits import EXIT_DATAERR, EXIT_NOPERM, EXIT_OK, EXIT_USAGE
from netwarden.model.baseline import BaselineItem, BaselineMode, DriftKind, ItemStatus, Mode

_days = number(float, "a number of days", 0.001, 366.0, flag="--days")
_KINDS = [k.value for k in DriftKind]


def _fail(message: str, status: int) -> int:
    print(f"netwarden baseline: {message}", file=sys.stderr)
    return status


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch))


def describe_mode(mode: BaselineMode) -> str:
    """One line: 'learning until ...', 'enforcing since ...', 'off (never learned)'."""
    if mode.mode is Mode.LEARNING:
        return f"learning until {_when(mode.learning_until)} (since {_when(mode.started)})"
    if mode.mode is Mode.ENFORCING:
        return f"enforcing since {_when(mode.learning_until)}"
    return "off (never learned: run `netwarden baseline learn --days N`)"


def _item_line(item: BaselineItem) -> str:
    return (f"{item.id:>6}  {item.status.value:<8}  {item.kind.value:<16}  "
            f"{_when(item.first_seen)}  {item.key}")


# ---- reading ----

def _reader(config: Config) -> sqlite3.Connection:
    from netwarden.store.sqlite_db import open_readonly
    return open_readonly(config.db_path)


def cmd_status(args: argparse.Namespace) -> int:
    from netwarden.store.baseline import count_items, read_mode
    conn = _reader(config_of(args))
    mode, counts = read_mode(conn, time.time()), count_items(conn)
    per_kind = {kind: {s.value: counts.get((kind, s.value), 0) for s in ItemStatus}
                for kind in _KINDS}
    if args.json:
        print(json.dumps(mode.as_record() | {"counts": per_kind}))
        return EXIT_OK
    print(f"mode: {describe_mode(mode)}")
    print(f"{'kind':<16}  {'learned':>7}  {'approved':>8}  {'drift':>5}")
    for kind, row in per_kind.items():
        print(f"{kind:<16}  {row['learned']:>7}  {row['approved']:>8}  {row['drift']:>5}")
    return EXIT_OK


def cmd_list(args: argparse.Namespace) -> int:
    from netwarden.store.baseline import list_items
    kind = None if args.kind is None else DriftKind(args.kind)
    status = None if args.status is None else ItemStatus(args.status)
    items = list_items(_reader(config_of(args)), kind, status)
    for item in items:
        print(json.dumps(item.as_record(), ensure_ascii=False) if args.json
              else _item_line(item))
    return EXIT_OK


# ---- writing ----

def _writing(func: Callable[[argparse.Namespace, object], int]
             ) -> Callable[[argparse.Namespace], int]:
    """Open the store for writing around ``func``, with the errors `known set` gives."""
    def run(args: argparse.Namespace) -> int:
        from netwarden.store.baseline import BaselineStore
        config = config_of(args)
        hint = f"(run as the database's owner, user '{config.store.owner}', or root)"
        # Said at once: SQLite would report it only after the WAL switch's retries (10 s).
        if config.db_path.exists() and not os.access(config.db_path, os.W_OK):
            return _fail(f"cannot write {config.db_path}: permission denied {hint}",
                         EXIT_NOPERM)
        try:
            store = BaselineStore(config.db_path, time.time(), config.store.group or None,
                                  config.store.owner or None)
        except PermissionError as exc:
            return _fail(f"cannot write {config.db_path}: {exc.strerror} {hint}", EXIT_NOPERM)
        except sqlite3.OperationalError as exc:
            if "readonly" in str(exc) or "unable to open" in str(exc):
                return _fail(f"cannot write {config.db_path}: {exc} {hint}", EXIT_NOPERM)
            raise
        try:
            return func(args, store)
        finally:
            store.close()
    return run


def cmd_learn(args: argparse.Namespace, store: object) -> int:
    mode = store.learn(time.time(), args.days)  # type: ignore[attr-defined]
    print(f"baseline: {describe_mode(mode)}")
    return EXIT_OK


def cmd_finish(args: argparse.Namespace, store: object) -> int:
    from netwarden.store.baseline import NotLearning
    try:
        mode = store.finish(time.time())  # type: ignore[attr-defined]
    except NotLearning as exc:
        return _fail(str(exc), EXIT_USAGE)
    print(f"baseline: {describe_mode(mode)}")
    return EXIT_OK


def _review(approve: bool) -> Callable[[argparse.Namespace, object], int]:
    def run(args: argparse.Namespace, store: object) -> int:
        from netwarden.store.baseline import AmbiguousKey, ItemNotFound
        kind = None if args.kind is None else DriftKind(args.kind)
        action = store.approve if approve else store.revoke  # type: ignore[attr-defined]
        try:
            item = action(args.item, time.time(), kind)
        except (ItemNotFound, AmbiguousKey) as exc:
            return _fail(str(exc), EXIT_DATAERR)
        verb = "in the baseline" if approve else "revoked (out of the baseline)"
        print(f"{verb}: {item.kind.value} {item.key} (id {item.id})")
        return EXIT_OK
    return run


# ---- parser ----

def add_commands(add: AddCommand) -> None:
    base = add("baseline", lambda args: EXIT_USAGE,
               "the learning period and the baseline: learn what is normal, then raise a "
               "drift event for anything outside it", config=False)
    base.epilog = ("While learning, new programs, destinations (per program), listening "
                   "ports, LAN devices and their open ports enter the baseline without "
                   "notifying. Afterwards each new one raises one `drift` event (kinds: "
                   + ", ".join(_KINDS) + "). learn, finish, approve and revoke write the "
                   "store: run them as its owner or root.")
    actions = base.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, func: Callable[[argparse.Namespace], int],
               help_text: str) -> argparse.ArgumentParser:
        p = actions.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(func=func)
        p.add_argument("--config", type=Path, metavar="PATH", help="TOML settings")
        p.add_argument("--db", metavar="PATH",
                       help="the SQLite database (overrides [store] path)")
        return p

    learn = action("learn", _writing(cmd_learn),
                   "start learning for N days (again while learning: the period now ends N "
                   "days from now)")
    learn.add_argument("--days", type=_days, required=True, metavar="N",
                       help="how long to learn, in days (0.001 to 366; fractions allowed)")
    action("status", cmd_status, "the mode (off, learning until, enforcing) and the "
           "number of items per kind and status").add_argument(
        "--json", action="store_true", help="one JSON object")
    action("finish", _writing(cmd_finish), "end learning now: from here on, drift")
    lister = action("list", cmd_list, "the baseline's items and the drift waiting for review")
    lister.add_argument("--kind", choices=_KINDS, help="only items of this kind")
    lister.add_argument("--status", choices=[s.value for s in ItemStatus],
                        help="only items with this status (drift: what awaits review)")
    lister.add_argument("--json", action="store_true", help="one JSON record per item")
    for name, approve, text in (
            ("approve", True, "put a drift item into the baseline (it no longer notifies)"),
            ("revoke", False, "take an item out of the baseline (seen again, it drifts)")):
        review = action(name, _writing(_review(approve)), text)
        review.add_argument("item", metavar="ID|KEY",
                            help="the item's id, or its key (a program path; 'PATH DEST'; "
                                 "tcp/8080; a MAC; 'MAC tcp/22'), as `baseline list` shows")
        review.add_argument("--kind", choices=_KINDS,
                            help="the kind, when a key names items of several kinds")
