"""``pybuild stop [-t SECONDS] CONTAINER...``: STOPSIGNAL, then SIGKILL after the timeout."""

from __future__ import annotations

import argparse

from builder.commands._containers import add_container_arguments, each

HELP = "Stop running containers (like `docker stop`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-t",
        "--time",
        "--timeout",
        dest="time",
        type=int,
        default=None,
        metavar="SECONDS",
        help="seconds to wait before killing (default: the container's, 10)",
    )
    add_container_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return each(args, lambda containers, c: containers.stop(c, args.time))
