"""``pybuild port CONTAINER [PORT[/PROTO]]``: the published ports, as ``docker port``."""

from __future__ import annotations

import argparse

from builder.commands._containers import open_containers
from builder.commands._io import add_root_argument
from builder.errors import BuildError

HELP = "List port mappings of a container (like `docker port`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("container", metavar="CONTAINER")
    parser.add_argument("port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")
    add_root_argument(parser)


def run(args: argparse.Namespace) -> int:
    containers = open_containers(args)
    container = containers.refresh(containers.store.find(args.container))
    mappings = container.state.ports
    if args.port:
        port, _, proto = args.port.partition("/")
        chosen = [
            m for m in mappings if str(m.container_port) == port and m.proto == (proto or "tcp")
        ]
        if not chosen:
            raise BuildError(
                f"No public port '{port}/{proto or 'tcp'}' published for {args.container}"
            )
        for m in chosen:
            print(f"{m.host_ip}:{m.host_port}")
        return 0
    for m in mappings:
        print(f"{m.container_port}/{m.proto} -> {m.host_ip}:{m.host_port}")
    return 0
