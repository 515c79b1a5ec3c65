"""``pybuild save IMAGE... [-o FILE]``: write images as a docker-archive (or OCI archive).

Without ``-o`` the archive goes to stdout, which must not be a terminal. With ``-o`` it is
written to a temporary file beside FILE and renamed into place, so a failure leaves no partial
archive. A repository name without a tag saves every tag of that repository, as Docker does.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from builder.commands._io import add_root_argument
from builder.commands._store import open_store
from builder.errors import BuildError, InvalidReferenceError
from builder.oci.descriptor import Platform
from builder.reference import parse_normalized
from builder.store import Store
from builder.store.archive import ArchiveFormat, save_archive
from builder.store.fsutil import replacing

HELP = "Save one or more images to a tar archive (like `docker save`)."

_FORMATS = {"docker": ArchiveFormat.DOCKER, "oci": ArchiveFormat.OCI}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="name, ID or digest")
    parser.add_argument("-o", "--output", metavar="FILE", help="write to a file, not stdout")
    parser.add_argument(
        "--format",
        choices=tuple(_FORMATS),
        default="docker",
        help="docker-archive (docker load) or OCI archive (default: %(default)s)",
    )
    parser.add_argument("--platform", help="the platform to save from a multi-platform image")
    add_root_argument(parser)


def _expand(store: Store, text: str) -> list[str]:
    """A bare repository name means all of its tags; anything else is looked up as is."""
    try:
        ref = parse_normalized(text)
    except InvalidReferenceError:
        ref = None
    if ref is not None and not ref.tag and not ref.digest:
        tags = sorted(
            name
            for entry in store.entries()
            for name in entry.names
            if parse_normalized(name).name == ref.name
        )
        if tags:
            return tags
    store.lookup(text)  # "No such image" before any output is written
    return [text]


def run(args: argparse.Namespace) -> int:
    if args.output is None and sys.stdout.isatty():
        raise BuildError("cowardly refusing to save to a terminal. Use the -o flag or redirect")
    platform = Platform.parse(args.platform) if args.platform else None
    store = open_store(args)
    refs: list[str] = []
    for text in args.images:
        for ref in _expand(store, text):
            if ref not in refs:
                refs.append(ref)
    fmt = _FORMATS[args.format]
    if args.output is None:
        out = sys.stdout.buffer
        save_archive(store, refs, out, format=fmt, platform=platform)
        out.flush()
        return 0
    try:
        with replacing(Path(args.output), prefix=".pybuild_save_") as f:
            save_archive(store, refs, f, format=fmt, platform=platform)
    except OSError as exc:
        raise BuildError(f"failed to save image: {args.output}: {exc.strerror}") from None
    return 0
