"""Mark-and-sweep garbage collection of store blobs (S7).

Roots: every ``index.json`` entry (tagged or dangling), every cache record, and the image of
every container (``containers/<id>/image.json``: a container's image is never pruned). Manifests and
indexes are parsed (size-capped, verified while read) and walked to their config and layers.
A missing or corrupt blob under an index root aborts the run: GC never "sweeps everything"
because it misread a root. A cache record whose blobs are gone is dropped (the cache is
disposable). Everything runs under the exclusive store lock, so no writer is mid-commit.

The lock files of blob fetches (``locks/<hex>.lock``) and of steps (``locks/step-<key>.lock``),
one per blob or step ever fetched or run, go too: only a process holding the store lease takes
them, so none is held (or about to be) while the exclusive lock is.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from builder.digest import Digest
from builder.errors import StoreError
from builder.oci._json import MAX_JSON_BYTES
from builder.oci.descriptor import Descriptor
from builder.oci.manifest import Index, Manifest
from builder.oci.mediatype import is_index, is_manifest
from builder.store import paths
from builder.store.paths import CONTAINER_IMAGE, containers_dir

if TYPE_CHECKING:
    from builder.store.layout import Store

_MAX_DEPTH = 8


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneReport:
    removed: tuple[Digest, ...] = ()
    reclaimed_bytes: int = 0
    kept: int = 0
    removed_ingest: int = 0
    removed_dangling: int = 0
    dropped_cache_records: int = 0
    dry_run: bool = False


def walk(store: Store, desc: Descriptor, marked: set[Digest], *, depth: int = 0) -> None:
    """Mark ``desc`` and everything it references; raises ``StoreError`` if any is missing."""
    if depth > _MAX_DEPTH:
        raise StoreError(f"index nesting deeper than {_MAX_DEPTH} at {desc.digest}")
    if not store.cas.has(desc.digest):
        raise StoreError(f"blob {desc.digest} ({desc.media_type}) is missing")
    marked.add(desc.digest)
    if is_manifest(desc.media_type):
        data = store.cas.read_bytes(desc, limit=MAX_JSON_BYTES)
        manifest = Manifest.from_bytes(data, what=f"manifest {desc.digest}")
        for child in (manifest.config, *manifest.layers):
            if not store.cas.has(child.digest):
                raise StoreError(
                    f"blob {child.digest} referenced by manifest {desc.digest} is missing"
                )
            marked.add(child.digest)
    elif is_index(desc.media_type):
        data = store.cas.read_bytes(desc, limit=MAX_JSON_BYTES)
        for child in Index.from_bytes(data, what=f"index {desc.digest}").manifests:
            walk(store, child, marked, depth=depth + 1)


def container_images(store: Store) -> list[Descriptor]:
    """The images containers were made from (``containers/<id>/image.json``); a record being
    written or removed right now is skipped."""
    out: list[Descriptor] = []
    for path in sorted(containers_dir(store.root).glob(f"*/{CONTAINER_IMAGE}")):
        try:
            out.append(Descriptor.from_json(json.loads(path.read_text()), str(path)))
        except (OSError, ValueError, StoreError):
            continue
    return out


def mark(store: Store) -> tuple[set[Digest], int]:
    """Reachable digests, and how many broken cache records were dropped."""
    marked: set[Digest] = set()
    for desc in store.read_index().manifests:
        try:
            walk(store, desc, marked)
        except StoreError as exc:
            raise StoreError(
                f"prune aborted, nothing removed: {exc.message}; run `pybuild fsck`"
            ) from None
    for desc in container_images(store):
        # a container being created or removed: its image is also in the index
        with contextlib.suppress(OSError, ValueError, StoreError):
            walk(store, desc, marked)
    dropped = 0
    for record in store.cache.records():
        found: set[Digest] = set()
        try:
            for root in record.roots:
                walk(store, root, found)
        except StoreError:
            store.cache.delete(record.key)
            dropped += 1
            continue
        marked |= found
    return marked, dropped


def prune(
    store: Store, *, dry_run: bool = False, dangling: bool = False, grace_seconds: float = 0.0
) -> PruneReport:
    """Sweep the blobs nothing references (older than ``grace_seconds``); see the module doc."""
    with store.exclusive():
        removed_dangling = 0
        if dangling and not dry_run:
            removed_dangling = store.remove_dangling()
        marked, dropped = mark(store)
        now = time.time()
        removed: list[Digest] = []
        reclaimed = 0
        kept = 0
        for digest, path in sorted(store.cas.digests(), key=lambda p: p[0].hex):
            if digest in marked:
                kept += 1
                continue
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            if now - st.st_mtime < grace_seconds:
                kept += 1
                continue
            removed.append(digest)
            reclaimed += st.st_size
            if not dry_run:
                store.cas.delete(digest)
        ingest = store.cas.stale_ingest(grace_seconds=0)
        if not dry_run:
            for path in ingest:
                path.unlink(missing_ok=True)
            for name in (d.name for d in paths.STATE_DIRS if d.temporary):
                directory = store.root / name
                if not directory.is_dir():
                    continue
                for child in directory.iterdir():
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)
            _drop_lease_locks(store)
        return PruneReport(
            removed=tuple(removed),
            reclaimed_bytes=reclaimed,
            kept=kept,
            removed_ingest=len(ingest),
            removed_dangling=removed_dangling,
            dropped_cache_records=dropped,
            dry_run=dry_run,
        )


_LEASE_LOCK = re.compile(r"(step-)?[0-9a-f]{64}\.lock")


def _drop_lease_locks(store: Store) -> None:
    """Remove the blob-fetch and step lock files (taken only under the lease; see above)."""
    with os.scandir(store.root / paths.LOCKS) as it:
        for entry in it:
            if _LEASE_LOCK.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(entry.path)
