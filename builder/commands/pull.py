"""``pybuild pull NAME[:TAG|@DIGEST] [--platform OS/ARCH[/VARIANT]]``: like ``docker pull``.

Prints Docker's lines (``latest: Pulling from library/busybox``, one line per layer, ``Digest:``,
``Status:`` and the full reference); per-layer progress bars only on a terminal.
"""

from __future__ import annotations

import argparse
import sys

from builder.commands._io import add_root_argument
from builder.commands._store import open_store
from builder.errors import StoreError
from builder.oci.descriptor import Platform
from builder.reference import parse_normalized
from builder.registry.client import RegistryClient
from builder.registry.progress import TerminalProgress, discard
from builder.registry.remote import pull_image

HELP = "Download an image from a registry (like `docker pull`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="NAME[:TAG|@DIGEST]", help="the image to pull")
    parser.add_argument(
        "--platform", metavar="OS/ARCH[/VARIANT]", help="platform to pull (default: the host's)"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the reference")
    add_root_argument(parser)


def run(args: argparse.Namespace) -> int:
    given = parse_normalized(args.reference)
    reference = given.docker_ref()
    platform = None
    if args.platform:
        try:
            platform = Platform.parse(args.platform)
        except StoreError as exc:
            raise StoreError(f"pull {reference.familiar}: {exc.message}") from None
    out = sys.stdout
    if not args.quiet:
        if not given.tag and not given.digest:
            out.write(f"Using default tag: {reference.tag}\n")
        out.write(f"{reference.tag or reference.digest}: Pulling from {reference.path}\n")
        out.flush()
    store = open_store(args)
    progress = discard if args.quiet else TerminalProgress(out, tty=out.isatty())
    with RegistryClient.from_environment() as client:
        try:
            result = pull_image(
                store, reference, client=client, platform=platform, progress=progress
            )
        finally:
            if isinstance(progress, TerminalProgress):
                progress.close()
    if not args.quiet:
        out.write(f"Digest: {result.digest}\n")
        if result.up_to_date:
            out.write(f"Status: Image is up to date for {reference.familiar}\n")
        else:
            out.write(f"Status: Downloaded newer image for {reference.familiar}\n")
    out.write(f"{reference}\n")
    return 0
