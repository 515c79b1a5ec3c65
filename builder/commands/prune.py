"""``pybuild prune [-f] [--all | --cache-mounts]``: remove dangling images and every blob nothing
references.

Roots are the tagged images of ``index.json`` and the build cache records; ``--all`` drops the
build cache records too, so only what tagged images use survives. ``--cache-mounts`` instead
empties only the ``RUN --mount=type=cache`` directories, keeping those a running build holds
(it takes no store lock, so it works while builds run). Asks for confirmation
unless ``-f``. A store whose tagged images are damaged is not pruned (nothing is removed,
``pybuild fsck`` says what is wrong).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from builder.commands._io import add_root_argument
from builder.commands._store import forget_sizes, open_store
from builder.digest import Digest, chain_id
from builder.engine import cachemounts
from builder.errors import StoreError
from builder.snapshot.layerdirs import LayerDirs
from builder.store import Store
from builder.store.gc import container_images, prune
from builder.store.paths import CACHEMOUNTS, state_dir
from builder.units import human_size

HELP = "Remove dangling images and unreferenced blobs (like `docker image prune`)."

_WARNING = "WARNING! This will remove all dangling images."
_WARNING_ALL = "WARNING! This will remove all dangling images and all build cache."
_WARNING_MOUNTS = "WARNING! This will remove all cache mounts not in use."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-a", "--all", action="store_true", help="also remove the build cache records"
    )
    scope.add_argument(
        "--cache-mounts",
        action="store_true",
        help="only empty the RUN --mount=type=cache directories (not those a build is using)",
    )
    add_root_argument(parser)


def _confirm(warning: str) -> bool:
    sys.stdout.write(f"{warning}\nAre you sure you want to continue? [y/N] ")
    sys.stdout.flush()
    answer = sys.stdin.readline().strip()
    return answer in ("y", "Y")


def _used_layers(store: Store) -> tuple[set[Digest], set[str]]:
    """The diff IDs and the chain IDs (hex) of every layer of the images left, and of the
    containers' images (their layer directories are mounted while they run)."""
    descriptors = [entry.descriptor for entry in store.entries()]
    descriptors.extend(container_images(store))
    diff_ids: set[Digest] = set()
    chains: set[str] = set()
    for descriptor in descriptors:
        try:
            layers = store.load_image(descriptor).config.diff_ids
        except StoreError:
            continue
        diff_ids.update(layers)
        chains.update(chain_id(layers[: i + 1]).hex for i in range(len(layers)))
    return diff_ids, chains


def run(args: argparse.Namespace) -> int:
    warning = _WARNING_MOUNTS if args.cache_mounts else _WARNING_ALL if args.all else _WARNING
    if not args.force and not _confirm(warning):
        print("image prune has been cancelled", file=sys.stderr)
        return 0
    if args.cache_mounts:
        return _prune_cache_mounts(open_store(args).root)
    store = open_store(args)
    dangling = [store.image_id(e) or e.digest for e in store.entries() if not e.names]
    if args.all:
        with store.exclusive():
            for record in list(store.cache.records()):
                store.cache.delete(record.key)
    report = prune(store, dangling=True)
    diff_ids, chains = _used_layers(store)
    forget_sizes(store, diff_ids)
    with store.exclusive():  # no build is using a layer directory
        LayerDirs(store).prune(keep=chains)
    if dangling and report.removed_dangling:
        print("Deleted Images:")
        for image_id in dangling:
            print(f"deleted: {image_id}")
        print()
    print(f"Total reclaimed space: {human_size(report.reclaimed_bytes, 4)}")
    return 0


def _prune_cache_mounts(root: Path) -> int:
    report = cachemounts.prune(state_dir(root, CACHEMOUNTS))
    if report.removed:
        print("Deleted cache mounts:")
        for name in report.removed:
            print(name)
        print()
    for name in report.busy:
        print(f"cache mount {name} is in use by a running build: kept", file=sys.stderr)
    print(f"Total reclaimed space: {human_size(report.reclaimed_bytes, 4)}")
    return 0
