"""``pybuild logs [-f] [--tail N] [-t] [--since T] CONTAINER``: the container's output."""

from __future__ import annotations

import argparse
import sys

from builder.commands._containers import open_containers
from builder.commands._io import add_root_argument
from builder.containers.logs import Entry, parse_since, read_logs
from builder.containers.state import Status
from builder.errors import BuildError

HELP = "Fetch the logs of a container (like `docker logs`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--follow", action="store_true", help="follow log output")
    parser.add_argument("-n", "--tail", default="all", metavar="N", help="lines from the end")
    parser.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    parser.add_argument("--since", metavar="TIME", help="since a time or a duration (10m)")
    parser.add_argument("container", metavar="CONTAINER")
    add_root_argument(parser)


def run(args: argparse.Namespace) -> int:
    containers = open_containers(args)
    container = containers.store.find(args.container)
    tail = None
    if args.tail != "all":
        if not args.tail.lstrip("-").isdigit():
            raise BuildError(f'invalid value for "tail": {args.tail}')
        tail = max(int(args.tail), 0) if int(args.tail) >= 0 else None
    since = parse_since(args.since) if args.since else None

    def write(entry: Entry) -> None:
        stream = sys.stderr.buffer if entry.stream == "stderr" else sys.stdout.buffer
        if args.timestamps:
            stream.write(entry.docker_time().encode() + b" ")
        stream.write(entry.data)
        stream.flush()

    def running() -> bool:
        current = containers.refresh(containers.store.load(container.config.id))
        return current.state.status in (Status.RUNNING, Status.RESTARTING)

    read_logs(
        container.directory / "ctr.log",
        write,
        tail=tail,
        since=since,
        follow=running if args.follow else None,
    )
    return 0
