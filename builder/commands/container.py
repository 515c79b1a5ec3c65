"""``pybuild container prune|ls|cleanup|health ...``.

``prune`` removes every stopped container (``docker container prune``); ``ls`` is ``ps``.
``cleanup`` and ``health`` are run by pybuild itself: conmon runs ``cleanup ID`` when a
container's process exits, ``start`` runs ``health ID`` for a container with a HEALTHCHECK.
"""

from __future__ import annotations

import argparse
import sys

from builder.commands import ps
from builder.commands._containers import open_containers
from builder.commands._io import add_root_argument
from builder.containers.health import monitor
from builder.containers.state import Status
from builder.store.fsutil import tree_size
from builder.units import human_size

HELP = "Manage containers: prune (remove all stopped containers), ls."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="COMMAND")
    prune = sub.add_parser("prune", help="remove all stopped containers")
    prune.add_argument("-f", "--force", action="store_true", help="do not prompt")
    add_root_argument(prune)
    ls = sub.add_parser("ls", help="list containers (like ps)")
    ls.add_argument("-a", "--all", action="store_true")
    ls.add_argument("-q", "--quiet", action="store_true")
    ls.add_argument("--format", choices=("table", "json"), default="table")
    add_root_argument(ls)
    for name in ("cleanup", "health"):
        hidden = sub.add_parser(name)
        hidden.add_argument("container")
        add_root_argument(hidden)


def run(args: argparse.Namespace) -> int:
    match args.action:
        case "ls":
            return ps.run(args)
        case "cleanup":
            containers = open_containers(args)
            containers.cleanup(containers.store.find(args.container))
            return 0
        case "health":
            containers = open_containers(args)
            monitor(containers, containers.store.find(args.container).config.id)
            return 0
        case "prune":
            if not args.force:
                print(
                    "WARNING! This will remove all stopped containers.\n"
                    "Are you sure you want to continue? [y/N] ",
                    end="",
                    flush=True,
                )
                if sys.stdin.readline().strip() not in ("y", "Y"):
                    return 0
            containers = open_containers(args)
            removed: list[str] = []
            reclaimed = 0
            for c in containers.store.all():
                c = containers.refresh(c)
                if c.state.status in (Status.RUNNING, Status.RESTARTING):
                    continue
                reclaimed += tree_size(c.directory / "upper")
                containers.remove(c)
                removed.append(c.config.id)
            if removed:
                print("Deleted Containers:")
                for cid in removed:
                    print(cid)
                print()
            print(f"Total reclaimed space: {human_size(reclaimed)}")
            return 0
    return 2
