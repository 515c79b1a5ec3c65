"""``pybuild rm [-f] [-v] CONTAINER...``: remove containers and their writable layers."""

from __future__ import annotations

import argparse

from builder.commands._containers import add_container_arguments, each

HELP = "Remove one or more containers (like `docker rm`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="kill a running container")
    parser.add_argument(
        "-v",
        "--volumes",
        action="store_true",
        help="remove anonymous volumes (always: they live in the container's directory)",
    )
    add_container_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return each(args, lambda containers, c: containers.remove(c, force=args.force))
