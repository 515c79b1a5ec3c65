"""``pybuild restart [-t SECONDS] CONTAINER...``: stop, then start."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from builder.commands._containers import add_container_arguments, each

if TYPE_CHECKING:
    from builder.containers.lifecycle import Containers
    from builder.containers.state import Container

HELP = "Restart one or more containers (like `docker restart`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-t", "--time", type=int, default=None, metavar="SECONDS")
    add_container_arguments(parser)


def run(args: argparse.Namespace) -> int:
    def restart(containers: Containers, container: Container) -> None:
        containers.stop(container, args.time)
        containers.start(containers.store.load(container.config.id))

    return each(args, restart)
