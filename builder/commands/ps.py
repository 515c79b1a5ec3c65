"""``pybuild ps [-a] [-q] [--format json]``: list containers as ``docker ps`` does."""

from __future__ import annotations

import argparse
import json
import time

from builder.commands._containers import (
    command_text,
    open_containers,
    ports_text,
    rfc3339,
    status_text,
)
from builder.commands._format import human_duration
from builder.commands._io import add_root_argument
from builder.containers.state import Status

HELP = "List containers (like `docker ps`)."

_COLUMNS = ("CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-a", "--all", action="store_true", help="show all containers")
    parser.add_argument("-q", "--quiet", action="store_true", help="only display IDs")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    add_root_argument(parser)


def run(args: argparse.Namespace) -> int:
    containers = open_containers(args)
    now = time.time()
    listed = [containers.refresh(c) for c in containers.store.all()]
    if not args.all:
        listed = [c for c in listed if c.state.status in (Status.RUNNING, Status.RESTARTING)]
    if args.quiet:
        for c in listed:
            print(c.short_id)
        return 0
    rows = [
        (
            c.short_id,
            c.config.image,
            command_text(c),
            f"{human_duration(now - c.config.created)} ago",
            status_text(c, now),
            ports_text(c),
            c.config.name,
        )
        for c in listed
    ]
    if args.format == "json":
        for c, row in zip(listed, rows, strict=True):
            record = dict(
                zip(
                    ("ID", "Image", "Command", "RunningFor", "Status", "Ports", "Names"),
                    row,
                    strict=True,
                )
            )
            record["CreatedAt"] = rfc3339(c.config.created)
            record["State"] = str(c.state.status)
            print(json.dumps(record, ensure_ascii=False))
        return 0
    widths = [max([len(col), *(len(r[i]) for r in rows)]) for i, col in enumerate(_COLUMNS)]
    for row in (_COLUMNS, *rows):
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        print("   ".join([*cells, row[-1]]))
    return 0
