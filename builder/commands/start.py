"""``pybuild start CONTAINER...``: start stopped containers (their files are kept)."""

from __future__ import annotations

import argparse

from builder.commands._containers import add_container_arguments, each

HELP = "Start one or more stopped containers (like `docker start`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_container_arguments(parser)


def run(args: argparse.Namespace) -> int:
    return each(args, lambda containers, c: containers.start(c))
