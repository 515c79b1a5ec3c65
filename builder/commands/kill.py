"""``pybuild kill [-s SIGNAL] CONTAINER...``: send a signal (default SIGKILL)."""

from __future__ import annotations

import argparse

from builder.commands._containers import add_container_arguments, each
from builder.containers.config import signal_name

HELP = "Kill one or more running containers (like `docker kill`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-s", "--signal", default="KILL", metavar="SIGNAL")
    add_container_arguments(parser)


def run(args: argparse.Namespace) -> int:
    name = signal_name(args.signal)
    return each(args, lambda containers, c: containers.kill(c, name, stopping=name == "SIGKILL"))
