"""``pybuild load [-i FILE]``: import a docker-archive or OCI archive (``docker load``).

Reads FILE, or stdin when it is not a terminal; gzip and zstd compressed archives are fine.
Prints ``Loaded image: NAME:TAG`` per name, or ``Loaded image ID: sha256:...`` for an image
without one. A corrupt or truncated archive fails with one line naming it and the member;
nothing gets a name then (blobs already stored are reclaimed by ``pybuild prune``).
"""

from __future__ import annotations

import argparse
import sys
from typing import BinaryIO

from builder.commands._format import familiar
from builder.commands._io import add_root_argument
from builder.commands._store import open_store
from builder.errors import BuildError
from builder.store.archive import load_archive

HELP = "Load images from a tar archive or stdin (like `docker load`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-i", "--input", metavar="FILE", help="read from a file, not stdin")
    parser.add_argument("-q", "--quiet", action="store_true", help="accepted for Docker parity")
    add_root_argument(parser)


def _load(args: argparse.Namespace, stream: BinaryIO, name: str) -> int:
    store = open_store(args)
    records = load_archive(store, stream, name=name)
    if not records:
        raise BuildError(f"{name}: the archive holds no image")
    for record in records:
        if record.names:
            for n in record.names:
                print(f"Loaded image: {familiar(n)}")
        else:
            print(f"Loaded image ID: {record.config_digest}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.input is None or args.input == "-":
        if sys.stdin.isatty():
            raise BuildError("requested load from stdin, but stdin is empty")
        return _load(args, sys.stdin.buffer, "<stdin>")
    try:
        f = open(args.input, "rb")  # noqa: SIM115 (a with-block follows the error check)
    except OSError as exc:
        raise BuildError(f"open {args.input}: {(exc.strerror or str(exc)).lower()}") from None
    with f:
        return _load(args, f, args.input)
