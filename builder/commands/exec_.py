"""``pybuild exec [-i] [-t] [-e K=V] [-w DIR] [-u USER] CONTAINER COMMAND...``."""

from __future__ import annotations

import argparse

from builder.commands._containers import open_containers
from builder.commands._io import add_root_argument
from builder.errors import BuildError

HELP = "Run a command in a running container (like `docker exec`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--interactive", action="store_true", help="keep STDIN open")
    parser.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("-w", "--workdir", metavar="DIR")
    parser.add_argument("-u", "--user", metavar="USER[:GROUP]")
    add_root_argument(parser)
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")


def run(args: argparse.Namespace) -> int:
    if not args.command:
        raise BuildError('"pybuild exec" requires at least 2 arguments.')
    containers = open_containers(args)
    container = containers.store.find(args.container)
    return containers.exec(
        container,
        list(args.command),
        tty=args.tty,
        interactive=args.interactive,
        env=tuple(args.env),
        workdir=args.workdir,
        user=args.user,
    )
