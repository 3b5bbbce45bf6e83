"""`netwarden metrics`: the standalone Prometheus exporter (docs/metrics.md).

    netwarden metrics [--listen HOST:PORT] [--top N] [--db PATH] [--user NAME]
"""

from __future__ import annotations

import argparse
import sys

from netwarden.bearer import bind_problem
from netwarden.cmdline import AddCommand, config_of, number
from netwarden.config import listen_address
from netwarden.exits import EXIT_CONFIG_ERROR, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

PROGRAM = "netwarden metrics"


def cmd_metrics(args: argparse.Namespace) -> int:
    config = config_of(args)
    try:
        host, port = listen_address(args.listen or config.metrics.listen)
    except ValueError as exc:   # only --listen can be wrong here: the config was checked
        print(f"{PROGRAM}: --listen {args.listen!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    problem = bind_problem(host, config.metrics.token, "[metrics] token")
    if problem:
        print(f"{PROGRAM}: {problem}", file=sys.stderr)
        return EXIT_CONFIG_ERROR
    from netwarden.privileges import PrivilegeError, become_unprivileged
    try:
        become_unprivileged(PROGRAM, args.user)
    except PrivilegeError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    from netwarden.metrics.exporter import BindError, ExporterSettings, make_server, serve
    settings = ExporterSettings(config.db_path, config.metrics.token,
                                args.top or config.metrics.top_n)
    try:
        server = make_server(settings, host, port)
    except BindError as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE
    serve(server, str(config.db_path))
    return EXIT_OK


def add_commands(add: AddCommand) -> None:
    metrics = add("metrics", cmd_metrics,
                  "serve Prometheus metrics (/metrics) from the store: bytes per executable, "
                  "the sensor's health, events, LAN devices (unprivileged)")
    metrics.add_argument("--listen", metavar="HOST:PORT",
                         help="where to serve (default [metrics] listen, 127.0.0.1:9771; "
                              "[::1]:9771 for IPv6); beyond loopback needs [metrics] token")
    metrics.add_argument("--top", type=number(int, "a number", 1, 1000, flag="--top"),
                         metavar="N", help="executables with their own bytes series, the rest "
                                           "summed as exe=\"other\" (default [metrics] top_n, "
                                           "20)")
    metrics.add_argument("--user", metavar="NAME",
                         help="started as root: the user to become before the store is "
                              "opened (a member of its group; the exporter never runs as root)")
    metrics.epilog = ("Counters count what the store recorded since the exporter started "
                      "(a restart is a counter reset, which Prometheus handles). Metrics, the "
                      "top-N rule and a scrape config: docs/metrics.md.")
