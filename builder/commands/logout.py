"""``pybuild logout [SERVER]``: forget a registry login (like ``docker logout``)."""

from __future__ import annotations

import argparse

from builder.registry.credentials import DockerConfig, registry_domain, registry_key

HELP = "Log out from a registry (like `docker logout`); default server: Docker Hub."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("server", nargs="?", default="docker.io", metavar="SERVER")


def run(args: argparse.Namespace) -> int:
    registry = registry_domain(args.server)
    config = DockerConfig.default()
    shown = registry_key(registry)
    if config.erase(registry):
        print(f"Removing login credentials for {shown}")
    else:
        print(f"Not logged in to {shown}")
    return 0
