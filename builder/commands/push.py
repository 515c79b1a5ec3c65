"""``pybuild push NAME[:TAG]``: upload an image of the store to its registry (``docker push``).

Prints ``The push refers to repository [...]``, one line per layer (``Pushed``, ``Layer already
exists``, ``Mounted from ...``) and ``TAG: digest: sha256:... size: N``.
"""

from __future__ import annotations

import argparse
import sys

from builder.commands._io import add_root_argument
from builder.commands._store import open_store
from builder.reference import parse
from builder.registry.client import RegistryClient
from builder.registry.progress import TerminalProgress, discard
from builder.registry.remote import push_image

HELP = "Upload an image to a registry (like `docker push`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("reference", metavar="NAME[:TAG]", help="the image to push")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the digest line")
    add_root_argument(parser)


def run(args: argparse.Namespace) -> int:
    reference = parse(args.reference)
    out = sys.stdout
    if not args.quiet:
        out.write(f"The push refers to repository [{reference.name}]\n")
        out.flush()
    store = open_store(args)
    progress = discard if args.quiet else TerminalProgress(out, tty=out.isatty())
    with RegistryClient.from_environment() as client:
        try:
            result = push_image(store, reference, client=client, progress=progress)
        finally:
            if isinstance(progress, TerminalProgress):
                progress.close()
    tag = reference.tag or reference.digest
    out.write(f"{tag}: digest: {result.digest} size: {result.size}\n")
    return 0
