"""``pybuild history IMAGE``: the image's history entries, newest first, as ``docker history``.

The newest row carries the image ID; older rows show ``<missing>`` (the store keeps no parent
images, as with any pulled image in Docker). Rows of steps that made no layer are ``0B``.
"""

from __future__ import annotations

import argparse
import sys

from builder.commands._format import created_rfc3339, created_since, ellipsis, short_id, table
from builder.commands._io import add_root_argument
from builder.commands._store import about, layer_size, open_store
from builder.errors import BuildError, StoreError
from builder.units import human_size, parse_bool

HELP = "Show the history of an image (like `docker history`)."

_MISSING = "<missing>"
_CREATED_BY_WIDTH = 45


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("image", nargs="?", metavar="IMAGE", help="name, ID or digest")
    parser.add_argument(
        "-H",
        "--human",
        nargs="?",
        const="true",
        default="true",
        metavar="BOOL",
        help="print sizes and dates in human readable format (default true; -H=false)",
    )
    parser.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    parser.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    add_root_argument(parser)


def _human_and_image(args: argparse.Namespace) -> tuple[bool, str]:
    """Go's boolean flag: ``-H`` takes no separate value, so ``-H IMAGE`` means -H=true IMAGE."""
    text: str = args.human
    image: str | None = args.image
    human = parse_bool(text)
    if human is None:
        if image is not None:
            raise BuildError(f'invalid argument "{text}" for "-H, --human" flag: not a boolean')
        image, human = text, True
    if image is None:
        raise BuildError('"pybuild history" requires exactly 1 argument')
    return human, image


def run(args: argparse.Namespace) -> int:
    human, name = _human_and_image(args)
    store = open_store(args)
    entry, _ = store.lookup(name)
    rows: list[tuple[str, str, str, int, str]] = []
    with about(name):
        image = store.load_image(entry.descriptor)
        layers = iter(image.layers)
        for item in image.config.history:
            size = 0
            if not item.empty_layer:
                layer = next(layers, None)
                if layer is None:
                    raise StoreError("too many non-empty layers in History section")
                size = layer_size(store, layer.descriptor, layer.diff_id)
            rows.append((_MISSING, item.created or "", item.created_by, size, item.comment))
    rows.reverse()
    if rows:
        rows[0] = (str(image.manifest.config.digest), *rows[0][1:])
    truncate = not args.no_trunc

    def ident(text: str) -> str:
        return short_id(text) if truncate and text != _MISSING else text

    if args.quiet:
        for row in rows:
            print(ident(row[0]))
        return 0
    lines = [["IMAGE", "CREATED" if human else "CREATED AT", "CREATED BY", "SIZE", "COMMENT"]]
    for image_id, created, created_by, size, comment in rows:
        by = created_by.replace("\t", " ")
        lines.append(
            [
                ident(image_id),
                created_since(created or None) if human else created_rfc3339(created or None),
                ellipsis(by, _CREATED_BY_WIDTH) if truncate else by,
                human_size(size) if human else str(size),
                comment,
            ]
        )
    sys.stdout.write(table(lines))
    return 0
