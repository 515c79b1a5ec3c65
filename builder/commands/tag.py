"""``pybuild tag SOURCE TARGET``: give an image another name (``docker tag``); silent on success."""

from __future__ import annotations

import argparse

from builder.commands._io import add_root_argument
from builder.commands._store import open_store
from builder.errors import InvalidReferenceError
from builder.reference import parse

HELP = "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE (like `docker tag`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="SOURCE_IMAGE[:TAG]", help="name, ID or digest")
    parser.add_argument("target", metavar="TARGET_IMAGE[:TAG]", help="the new name")
    add_root_argument(parser)


def run(args: argparse.Namespace) -> int:
    try:
        target = parse(args.target)
    except InvalidReferenceError as exc:
        raise InvalidReferenceError(
            f'Error parsing reference: "{args.target}" is not a valid repository/tag: {exc.message}'
        ) from None
    if target.digest:
        raise InvalidReferenceError("refusing to create a tag with a digest reference")
    store = open_store(args)
    entry, _ = store.lookup(args.source)
    store.add_index_entry(entry.descriptor, (str(target),))
    return 0
