"""What the image commands share besides formatting: the store location and layer sizes.

Lookups are the store's own (:meth:`Store.lookup`, :meth:`Store.entries`); output formatting
lives in :mod:`builder.commands._format`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

from builder.commands._format import familiar
from builder.digest import Digest
from builder.errors import DigestMismatchError, LayerError, StoreError
from builder.oci.descriptor import Descriptor
from builder.oci.image import Image
from builder.oci.layer_apply import open_layer_stream
from builder.oci.tarformat import EntryType, TarLimits, TarReader
from builder.store import Store, default_store_root
from builder.store.fsutil import atomic_write
from builder.store.paths import SIZES

# -- the store --------------------------------------------------------------------------------


def open_store(args: argparse.Namespace) -> Store:
    root: str | None = getattr(args, "root", None)
    return Store.open(Path(root) if root else default_store_root())


@contextlib.contextmanager
def about(name: str) -> Iterator[None]:
    """Prefix a store error raised inside with ``image NAME: `` (damage names its image)."""
    try:
        yield
    except StoreError as exc:
        raise StoreError(f"image {familiar(name)}: {exc.message}") from None


# -- layer sizes ------------------------------------------------------------------------------


def layer_size(store: Store, descriptor: Descriptor, diff_id: Digest) -> int:
    """Bytes of file content in a layer (what Docker reports as a layer's size).

    Computed once by reading the layer (its diff_id is checked on the way) and kept in
    ``<root>/sizes/<diff_id hex>``, a disposable cache keyed by content.
    """
    directory = store.root / SIZES
    path = directory / diff_id.hex
    try:
        return int(path.read_text())
    except (OSError, ValueError):
        pass
    limits = TarLimits()
    total = 0
    name = f"layer {descriptor.digest}"
    try:
        with io.BufferedReader(store.open_blob(descriptor), buffer_size=1 << 20) as blob:
            hashing, reader = open_layer_stream(blob, limits=limits, name=name)
            tar = TarReader(reader, limits=limits)
            while (hdr := tar.next()) is not None:
                if hdr.type is EntryType.FILE:
                    total += hdr.size
            while reader.read(1 << 20):
                pass
    except LayerError as exc:
        raise StoreError(f"{name}: {exc.message}") from None
    actual = hashing.hasher.digest()
    if actual != diff_id:
        raise DigestMismatchError(
            f"{name}: uncompressed content hashes to {actual}, the config says {diff_id}",
            expected=str(diff_id),
            actual=str(actual),
        )
    try:
        directory.mkdir(exist_ok=True)
        atomic_write(path, str(total).encode())
    except OSError:
        pass  # a read-only store still answers, just more slowly
    return total


def image_size(store: Store, image: Image) -> int:
    """Sum of the layers' content sizes (``docker images`` SIZE)."""
    return sum(layer_size(store, layer.descriptor, layer.diff_id) for layer in image.layers)


def forget_sizes(store: Store, keep: set[Digest]) -> None:
    """Drop cached layer sizes of diff_ids no longer used by any image."""
    directory = store.root / SIZES
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return
    wanted = {d.hex for d in keep}
    for name in names:
        if name not in wanted:
            (directory / name).unlink(missing_ok=True)
