"""`netwarden report`: the report of the period ending at --until, to stdout.

    netwarden report --period day|week|month [--format md|html] [--until EPOCH|ISO] [--top N]
                     [--db PATH|URL] [--user NAME]
"""

from __future__ import annotations

import argparse
import sys
import time

from netwarden.cmdline import AddCommand, config_of, number
from netwarden.exits import EXIT_OK, EXIT_USAGE

PROGRAM = "netwarden report"


def cmd_report(args: argparse.Namespace) -> int:
    from netwarden.view import report as shape
    # Checked here, not by argparse, so a bad period or time is one line and EX_USAGE (64),
    # as a script calling the report from cron can tell apart from a missing store (74).
    try:
        length = shape.period_seconds(args.period)
        until = shape.parse_until(args.until, time.time())
    except shape.ReportInputError as exc:
        print(f"{PROGRAM}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    from netwarden.reading import open_source
    from netwarden.reports.gather import gather
    source = open_source(config_of(args), getattr(args, "db_url", None), PROGRAM, args.user)
    try:
        report = gather(source, args.period, until - length, until, args.top)
    finally:
        source.close()
    render = shape.render_html if args.format == "html" else shape.render_markdown
    sys.stdout.write(render(report))
    return EXIT_OK


def add_commands(add: AddCommand) -> None:
    report = add("report", cmd_report,
                 "a day's, week's or month's report: traffic totals, top programs and "
                 "destinations, new and modified programs, new LAN devices, sensor health")
    report.add_argument("--period", required=True, metavar="day|week|month",
                        help="the span the report covers, ending at --until (a month is 30 "
                             "days)")
    report.add_argument("--format", choices=("md", "html"), default="md",
                        help="Markdown (default) or a self-contained HTML page")
    report.add_argument("--until", metavar="EPOCH|ISO",
                        help="the end of the period: epoch seconds or an ISO 8601 time "
                             "(local time without an offset); default now")
    report.add_argument("--top", type=number(int, "a number", 1, 1000, flag="--top"),
                        default=10, metavar="N",
                        help="programs and destinations listed (default 10)")
    report.add_argument("--user", metavar="NAME",
                        help="with --db URL started as root: the user to become first "
                             "(no database driver is loaded as root)")
    report.epilog = ("--db also takes a fleet's server (postgresql://READER@HOST/DB or "
                     "mariadb://...): the report then covers every host, with a line per "
                     "host. Outages come from the connectivity watch (local stores only); "
                     "scans seen from the sensor's port_scan events.")
