"""``pybuild fsck [--repair]``: verify every blob's content and every reference of the store.

Prints each problem on its own line (``corrupt: sha256:...: content does not match its name``,
``missing: sha256:...: referenced by index.json``, ...) and exits 1; a clean store prints
``ok: N blobs, M images verified``. ``--repair`` moves corrupt blobs to ``corrupt/`` and
removes abandoned ingest files (a re-pull or rebuild restores what was lost).
"""

from __future__ import annotations

import argparse

from builder.commands._io import add_root_argument
from builder.commands._store import open_store
from builder.store.fsck import fsck

HELP = "Check the image store for corrupt or missing blobs and broken references."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--repair",
        action="store_true",
        help="quarantine corrupt blobs and remove abandoned ingest files",
    )
    add_root_argument(parser)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    report = fsck(store, repair=args.repair)
    for problem in report.problems:
        print(problem)
    if report.ok:
        blobs = _plural(report.checked_blobs, "blob")
        images = _plural(report.checked_images, "image")
        print(f"ok: {blobs}, {images} verified")
        return 0
    if args.repair:
        print(f"repaired: {_plural(len(report.problems), 'problem')} handled; run fsck again")
    return 1
