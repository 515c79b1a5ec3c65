"""``pybuild run [OPTIONS] IMAGE [COMMAND [ARG...]]``: run a command in a new container.

The container's root is an overlay of the image's layer directories with a throwaway upper
directory (``docker run --rm`` semantics: nothing the container writes is kept). Networking is
the host's (there is no bridge), so ``-p`` publishes nothing: the process's ports are the host's.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

from builder.errors import BuildError, RunStepError, Span

HELP = "Run a command in a new container from an image (like `docker run --rm`)."


@dataclass(frozen=True, slots=True, kw_only=True)
class _Process:
    """What the runtime needs to start the container's process (the shape of a RUN step)."""

    args: tuple[str, ...]
    env: tuple[str, ...]
    user: str
    workdir: str
    network: str
    hostname: str
    mounts: tuple[object, ...] = ()
    security: str = "sandbox"
    heredoc_files: tuple[object, ...] = ()
    span: Span | None = field(default=None)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", metavar="IMAGE")
    parser.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND")
    parser.add_argument("--rm", action="store_true", help="accepted; containers are always removed")
    parser.add_argument("-e", "--env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("-u", "--user", metavar="USER[:GROUP]")
    parser.add_argument("-w", "--workdir", metavar="DIR")
    parser.add_argument("--entrypoint", metavar="CMD", help="override the image's ENTRYPOINT")
    parser.add_argument(
        "--network", default="host", choices=("host", "none"), help="networking (default host)"
    )
    parser.add_argument("--hostname", default="", metavar="NAME")
    parser.add_argument(
        "-p",
        "--publish",
        action="append",
        default=[],
        metavar="HOST:CONTAINER",
        help="accepted for docker compatibility; with host networking ports are already the host's",
    )
    parser.add_argument("--name", help="container name (informational)")
    parser.add_argument("--root", metavar="DIR", help="image store (default: $PYBUILD_ROOT)")


def _command(
    entrypoint: Sequence[str], cmd: Sequence[str], args: argparse.Namespace
) -> tuple[str, ...]:
    """Docker's rule: ENTRYPOINT + (COMMAND or CMD); --entrypoint drops the image's CMD."""
    if args.entrypoint is not None:
        entrypoint, cmd = ([args.entrypoint] if args.entrypoint else []), []
    if args.command:
        cmd = args.command
    argv = tuple(entrypoint) + tuple(cmd)
    if not argv:
        raise BuildError(f"{args.image}: no command specified")
    return argv


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from builder.commands._store import open_store
    from builder.engine.run import run_on_layers
    from builder.runtime.oci import Runc
    from builder.snapshot.layerdirs import LayerDirs
    from builder.snapshot.overlay import Overlay

    store = open_store(args)
    record = store.resolve(args.image)
    image = store.load_image(record.descriptor)
    config = image.config.config
    env = dict(e.partition("=")[::2] for e in config.env)
    for item in args.env:
        key, sep, value = item.partition("=")
        env[key] = value if sep else ""
    process = _Process(
        args=_command(config.entrypoint or (), config.cmd or (), args),
        env=tuple(f"{k}={v}" for k, v in env.items()),
        user=args.user or config.user or "",
        workdir=args.workdir or config.working_dir or "/",
        network=args.network,
        hostname=args.hostname or str(record.config_digest.hex[:12]),
    )
    if args.publish:
        print(
            "WARNING: -p is ignored: containers use the host's network, "
            "so the published ports are the container's own",
            file=sys.stderr,
        )
    dirs = LayerDirs(store)

    def on_output(data: bytes) -> None:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()

    with store.lease(), dirs.scratch_dir() as upper:
        try:
            run_on_layers(
                dirs.ensure(image.layers),
                upper,
                process,  # type: ignore[arg-type]
                runtime=Runc(root=Path(store.root) / "runc"),
                on_output=on_output,
                network=args.network,
                bundle_dir=Path(store.root) / "tmp",
                overlay=Overlay(dirs.root),
            )
        except RunStepError as err:
            return err.exit_code or 1
    return 0
