"""What the `netwarden` subcommands share: their config, their flags' number checkers, and
how a package registers its subcommands.

netwarden.cli builds the parser and registers the packages' subcommands (discovery, notify)
through ``AddCommand``; those modules take what they share from here, never from the CLI,
so nothing imports netwarden.cli.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TypeVar

from netwarden.config import Config, load_config, with_db_path

#: cli.build_parser's helper: ``add(name, func, help_text, config=True) -> subparser``.
AddCommand = Callable[..., argparse.ArgumentParser]

Number = TypeVar("Number", int, float)


def config_of(args: argparse.Namespace) -> Config:
    """The config a subcommand runs with: --config (required if given) and --db."""
    path = getattr(args, "config", None)
    return with_db_path(load_config(path, required=path is not None), getattr(args, "db", None))


def number(convert: Callable[[str], Number], what: str, low: Number,
           high: Number | None = None, flag: str = "") -> Callable[[str], Number]:
    """An argparse ``type=`` that wants ``what`` from ``low`` (to ``high``), with messages
    naming the flag when ``flag`` is given."""
    prefix = f"{flag} " if flag else ""

    def check(text: str) -> Number:
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{prefix}wants {what}, got {text!r}") from None
        if high is not None and not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{prefix}must be from {low} to {high}, got {value}")
        if value < low:
            raise argparse.ArgumentTypeError(
                f"{prefix}must not be negative" if low == 0 else f"{prefix}must be at least {low}")
        return value
    return check


#: --since, --at: epoch seconds.
epoch = number(float, "epoch seconds", 0.0)
#: --limit: a count.
positive = number(int, "a positive integer", 1)
