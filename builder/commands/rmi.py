"""``pybuild rmi [-f] IMAGE...``: remove images, with ``docker rmi``'s rules and output.

A name removes that name (``Untagged: busybox:latest``); the image itself goes
(``Deleted: sha256:<id>``) once no name is left. An ID removes the image and its name, but an
image with several names needs ``-f``. Blobs are reclaimed by ``pybuild prune``.

An image a container uses (running or stopped) keeps its last name unless ``-f``: then the name
goes and the image stays, dangling, for its container. By ID, a stopped container's image goes
only with ``-f``, a running container's never.
"""

from __future__ import annotations

import argparse
import sys

from builder.commands._format import familiar, short_id
from builder.commands._io import add_root_argument
from builder.commands._store import open_store
from builder.containers.state import Container, ContainerStore, Status
from builder.digest import Digest
from builder.errors import BuildError, StoreError
from builder.reference import parse
from builder.store import Store

HELP = "Remove one or more images (like `docker rmi`)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="name, ID or digest")
    parser.add_argument(
        "-f", "--force", action="store_true", help="remove an image that has several names"
    )
    add_root_argument(parser)


def _user(store: Store, image_id: Digest) -> Container | None:
    """A container (the newest) made from the image, running or not."""
    containers = ContainerStore(store.root).all()
    return next((c for c in containers if c.config.image_id == str(image_id)), None)


def _remove(store: Store, text: str, *, force: bool) -> list[str]:
    entry, by_id = store.lookup(text)
    image_id = store.image_id(entry) or entry.digest
    user = _user(store, image_id)
    records: list[str] = []
    if not by_id:
        name = str(parse(text))
        last = all(n == name for n in entry.names)
        if last and user is not None and not force:
            raise StoreError(
                f'conflict: unable to remove repository reference "{text}" (must force)'
                f" - container {user.short_id} is using its referenced image"
                f" {short_id(image_id)}"
            )
        store.untag(name)
        records.append(f"Untagged: {familiar(name)}")
        if not last or user is not None:
            return records
    else:
        if user is not None and user.state.status in (Status.RUNNING, Status.RESTARTING):
            raise StoreError(
                f"conflict: unable to delete {short_id(image_id)} (cannot be forced)"
                f" - image is being used by running container {user.short_id}"
            )
        if user is not None and not force:
            raise StoreError(
                f"conflict: unable to delete {short_id(image_id)} (must be forced)"
                f" - image is being used by stopped container {user.short_id}"
            )
        if len(entry.names) > 1 and not force:
            raise StoreError(
                f"conflict: unable to delete {short_id(image_id)} (must be forced)"
                " - image is referenced in multiple repositories"
            )
        for name in entry.names:
            store.untag(name)
            records.append(f"Untagged: {familiar(name)}")
    store.remove_image(entry.digest)
    records.append(f"Deleted: {image_id}")
    return records


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    failed = False
    for text in args.images:
        try:
            for line in _remove(store, text, force=args.force):
                print(line)
        except BuildError as exc:
            print(f"Error response from daemon: {exc.message}", file=sys.stderr)
            failed = True
    return 1 if failed else 0
