"""The image store: an OCI image layout plus pybuild's private state, under one root.

::

    <root>/oci-layout          {"imageLayoutVersion":"1.0.0"}
    <root>/index.json          tagged (and dangling) images; the refs, written last
    <root>/blobs/sha256/<hex>  content, named by the sha256 the store computed itself
    <root>/ingest/             temp files of blobs being written (flocked by their writer)
    <root>/locks/              store.lock (shared: writers; exclusive: prune), index.lock,
                               <hex>.lock (a blob being fetched), step-<key>.lock (a step running)
    <root>/cache/              build cache records (GC roots)
    <root>/snapshots/          unpacked rootfs per chain ID (managed by the snapshotter)
    <root>/tmp/ <root>/corrupt/ and the rest of pybuild's state: see ``builder.store.paths``

Tags: each tagged image is one ``index.json`` entry whose ``org.opencontainers.image.ref.name``
is the full normalised reference (``docker.io/library/busybox:latest``) and whose
``io.containerd.image.name`` repeats it, so ``skopeo copy oci:<root>:<full reference> ...`` finds
it (containers/image matches ``ref.name`` exactly) and containerd-style tools do too.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

from builder.digest import Digest, VerifyingReader, chain_id
from builder.errors import InvalidReferenceError, StoreError
from builder.oci._json import MAX_JSON_BYTES
from builder.oci.config import MAX_CONFIG_BYTES, ImageConfig
from builder.oci.descriptor import Descriptor, Platform
from builder.oci.image import Image, ImageValue, Layer
from builder.oci.manifest import Index, Manifest
from builder.oci.mediatype import Compression, is_index, is_manifest, layer_media_type
from builder.reference import Reference, is_digest, parse
from builder.store import paths
from builder.store.cache import CacheIndex
from builder.store.cas import BlobWriter, ContentStore
from builder.store.fsutil import atomic_write, no_space_during, spread_new_directories
from builder.store.locks import DEFAULT_TIMEOUT, flocked
from builder.store.paths import CONTAINERD_NAME, REF_NAME, default_store_root
from builder.timings import phase

__all__ = [
    "CONTAINERD_NAME",
    "REF_NAME",
    "ImageRecord",
    "IndexEntry",
    "Store",
    "StoreLayer",
    "default_store_root",
]

if TYPE_CHECKING:
    from builder.oci.layer_write import LayerEntry

LAYOUT_VERSION: Final = b'{"imageLayoutVersion":"1.0.0"}'


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageRecord:
    """An image known to the store: its manifest descriptor, config digest (ID), names."""

    descriptor: Descriptor
    config_digest: Digest
    names: tuple[str, ...] = ()
    created: str | None = None
    size: int = 0
    platform: Platform | None = None

    @property
    def id(self) -> Digest:
        return self.config_digest

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexEntry:
    """One image of index.json: its manifest (or index) descriptor and every name it has."""

    descriptor: Descriptor  # without the name annotations
    names: tuple[str, ...] = ()

    @property
    def digest(self) -> Digest:
        return self.descriptor.digest


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreLayer:
    """A layer blob in the store; ``open_compressed`` verifies while it streams."""

    cas: ContentStore
    descriptor: Descriptor
    diff_id: Digest

    def open_compressed(self) -> BinaryIO:
        return io.BufferedReader(self.cas.open(self.descriptor), buffer_size=1 << 20)


def _names(desc: Descriptor) -> tuple[str, ...]:
    name = desc.annotation(REF_NAME)
    return (name,) if name else ()


class Store:
    """Open with ``Store.open(root)``; every method is safe across processes (flock)."""

    def __init__(self, root: Path, *, lock_timeout: float = DEFAULT_TIMEOUT) -> None:
        self.root = root
        self.cas = ContentStore(root)
        self.cache = CacheIndex(paths.state_dir(root, paths.CACHE), self.cas)
        self.lock_timeout = lock_timeout
        self._leases = 0

    # -- opening ----------------------------------------------------------------------------

    @classmethod
    def open(
        cls, root: str | os.PathLike[str] | None = None, *, lock_timeout: float = DEFAULT_TIMEOUT
    ) -> Store:
        """Open (creating if needed) the store at ``root`` (default: ``default_store_root()``)."""
        path = Path(root) if root is not None else default_store_root()
        try:
            path.mkdir(parents=True, exist_ok=True, mode=paths.PRIVATE_MODE)
            for state in paths.STATE_DIRS:
                if state.at_open:
                    (path / state.name).mkdir(exist_ok=True, mode=paths.PRIVATE_MODE)
                if state.at_open and state.spread:
                    spread_new_directories(path / state.name)
            paths.blobs_dir(path).mkdir(exist_ok=True)
            paths.make_private(path)
            layout = path / paths.OCI_LAYOUT
            if not layout.exists():
                atomic_write(layout, LAYOUT_VERSION)
        except OSError as exc:
            raise StoreError(f"cannot create the image store at {path}: {exc.strerror}") from None
        store = cls(path, lock_timeout=lock_timeout)
        store._settle_index()
        store._check_one_filesystem()
        store._reap_ingest()
        return store

    def _settle_index(self) -> None:
        """Create an empty ``index.json`` if there is none, and remove the temp files of index
        writes a killed process left (``atomic_write``'s ``.index.json.*.tmp``). Every index
        write holds the index lock, so with it held no temp file is anyone's work in progress."""
        index = paths.index_path(self.root)
        prefix = f".{index.name}."
        try:
            with os.scandir(self.root) as it:
                temps = [
                    e.name for e in it if e.name.startswith(prefix) and e.name.endswith(".tmp")
                ]
            if not temps and index.exists():
                return
            with self._index_lock():
                for name in temps:
                    (self.root / name).unlink(missing_ok=True)
                if not index.exists():
                    atomic_write(index, Index().to_bytes())
        except OSError as exc:
            raise StoreError(
                f"cannot create the image store at {self.root}: {exc.strerror}"
            ) from None

    def _check_one_filesystem(self) -> None:
        dirs = (paths.blobs_dir(self.root), self.root / paths.INGEST, self.root / paths.TMP)
        devices = {d.stat().st_dev for d in dirs}
        if len(devices) != 1:
            raise StoreError(
                f"store {self.root}: blobs/, ingest/ and tmp/ must be on one filesystem"
                " (rename is only atomic within a filesystem)"
            )

    def _reap_ingest(self) -> None:
        for path in self.cas.stale_ingest():
            path.unlink(missing_ok=True)

    # -- locks ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def lease(self) -> Iterator[Store]:
        """Hold the shared store lock: blobs written meanwhile survive a concurrent prune."""
        with flocked(paths.store_lock_path(self.root), exclusive=False, timeout=self.lock_timeout):
            self._leases += 1
            try:
                yield self
            finally:
                self._leases -= 1

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[Store]:
        """Hold the exclusive store lock (GC/prune/fsck repair): no writer runs meanwhile."""
        if self._leases:
            raise StoreError("cannot take the exclusive store lock inside a lease (deadlock)")
        with flocked(paths.store_lock_path(self.root), exclusive=True, timeout=self.lock_timeout):
            yield self

    @contextlib.contextmanager
    def _index_lock(self) -> Iterator[None]:
        with flocked(
            paths.lock_path(self.root, "index.lock"), exclusive=True, timeout=self.lock_timeout
        ):
            yield

    # -- blobs ------------------------------------------------------------------------------

    def put_blob(
        self,
        stream: BinaryIO,
        *,
        media_type: str = "application/octet-stream",
        expected: Descriptor | None = None,
    ) -> Descriptor:
        """Store a blob, hashing while streaming; with ``expected``, a mismatch keeps nothing."""
        with self.lease():
            return self.cas.put(stream, media_type=media_type, expected=expected)

    def put_bytes(
        self,
        data: bytes,
        *,
        media_type: str = "application/octet-stream",
        expected: Descriptor | None = None,
    ) -> Descriptor:
        with self.lease():
            return self.cas.put_bytes(data, media_type=media_type, expected=expected)

    def blob_writer(
        self, *, media_type: str = "application/octet-stream", expected: Descriptor | None = None
    ) -> BlobWriter:
        """A writer for streaming producers (``write_layer(src, store.blob_writer(...))``).

        Hold ``lease()`` around the write and everything that references the blob.
        """
        return self.cas.writer(media_type=media_type, expected=expected)

    @contextlib.contextmanager
    def blob_lock(self, digest: Digest) -> Iterator[bool]:
        """Exclusive per-digest lock for fetchers (S5): yields whether the blob already exists,
        checked after the lock is held, so concurrent pulls of one blob fetch it once.

        A waiter waits as long as the fetch takes (the holder's transfer has its own idle
        timeouts, and the kernel releases the lock if the holder dies)."""
        path = paths.lock_path(self.root, f"{digest.hex}.lock")
        with flocked(path, exclusive=True, timeout=math.inf):
            yield self.cas.has(digest)

    @contextlib.contextmanager
    def step_lock(self, key: Digest) -> Iterator[None]:
        """Exclusive per-cache-key lock: concurrent builds run an identical step once.

        The holder runs the step and records it in the cache; a waiter re-checks the cache after
        the lock is held and takes the record (BuildKit's solver shares identical vertices the
        same way). There is no deadline: the wait lasts as long as the step runs, and the
        kernel releases the lock when its holder dies.
        """
        with flocked(
            paths.lock_path(self.root, f"step-{key.hex}.lock"), exclusive=True, timeout=math.inf
        ):
            yield

    def write_layer(
        self,
        source: str | os.PathLike[str] | Iterable[LayerEntry],
        *,
        compression: Compression = Compression.GZIP,
        source_date_epoch: int | None = None,
        docker_media_type: bool = False,
        overlay: bool = False,
    ) -> StoreLayer:
        """Write a layer straight into the store (one pass) and return it as a ``Layer``.

        Hold ``lease()`` until the image referencing it is written, or a prune may take it.
        """
        # lazy: tar and compressors (~20 ms) load only for writers; `images`, `tag`, `rmi` skip them
        from builder.oci.layer_write import write_layer

        media_type = layer_media_type(compression, docker=docker_media_type)
        with self.lease(), self.blob_writer(media_type=media_type) as writer:
            with phase("layer write (scan, tar, hash, compress)"):
                result = write_layer(
                    source,
                    writer,
                    compression=compression,
                    source_date_epoch=source_date_epoch,
                    docker_media_type=docker_media_type,
                    overlay=overlay,
                )
            with phase("layer blob commit (fsync, rename, fsync dir)"):
                desc = writer.commit()
        if desc.digest != result.digest or desc.size != result.size:
            raise StoreError(f"layer writer and store disagree on {result.digest}")
        return StoreLayer(cas=self.cas, descriptor=desc, diff_id=result.diff_id)

    def open_blob(self, desc: Descriptor) -> VerifyingReader:
        return self.cas.open(desc)

    def read_blob(self, desc: Descriptor, *, limit: int = MAX_JSON_BYTES) -> bytes:
        return self.cas.read_bytes(desc, limit=limit)

    def has_blob(self, digest: Digest) -> bool:
        return self.cas.has(digest)

    # -- index.json -------------------------------------------------------------------------

    def read_index(self) -> Index:
        path = paths.index_path(self.root)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"store {self.root}: index.json is missing") from None
        return Index.from_bytes(data, what=f"{path}")

    def _write_index(self, index: Index) -> None:
        path = paths.index_path(self.root)
        with phase("index write (fsync, rename, fsync dir)"), no_space_during(f"update of {path}"):
            atomic_write(path, index.to_bytes())

    def _update_index(self, entries: tuple[Descriptor, ...], names: tuple[str, ...]) -> None:
        """Add ``entries``; each name moves to them, images losing their last name stay dangling."""
        with self._index_lock():
            index = self.read_index()
            kept: list[Descriptor] = []
            taken = set(names)
            for desc in index.manifests:
                name = desc.annotation(REF_NAME)
                if name is not None and name in taken:
                    desc = desc.with_annotations(
                        tuple(
                            (k, v)
                            for k, v in desc.annotations
                            if k not in (REF_NAME, CONTAINERD_NAME)
                        )
                    )
                kept.append(desc)
            kept.extend(entries)
            updated = Index(manifests=_dedupe_dangling(kept), annotations=index.annotations)
            if updated != index:  # an identical index (a rebuild, a re-tag) is not rewritten
                self._write_index(updated)

    # -- images -----------------------------------------------------------------------------

    def write_image(self, image: Image, tags: tuple[str, ...] = ()) -> ImageRecord:
        """Store layers, config, manifest (bottom-up), then point ``tags`` at it in index.json."""
        refs = tuple(str(parse(t)) for t in tags)
        for ref in refs:
            if "@" in ref:
                raise InvalidReferenceError(f"cannot tag with a digest reference: {ref}")
        with self.lease():
            for layer in image.layers:
                desc = layer.descriptor
                if not self.cas.has(desc.digest):
                    with layer.open_compressed() as stream:
                        self.cas.put(stream, expected=desc)
            manifest = image.manifest
            self.cas.put_bytes(image.raw_config, expected=manifest.config)
            mdesc = Descriptor(
                media_type=manifest.media_type,
                digest=Digest.of_bytes(image.raw_manifest),
                size=len(image.raw_manifest),
            )
            self.cas.put_bytes(image.raw_manifest, expected=mdesc)
            entries = tuple(
                mdesc.with_annotations(((REF_NAME, ref), (CONTAINERD_NAME, ref))) for ref in refs
            ) or (mdesc,)
            self._update_index(entries, refs)
        return self._record(mdesc, refs, manifest, image.config)

    def _record(
        self,
        desc: Descriptor,
        names: tuple[str, ...],
        manifest: Manifest,
        config: ImageConfig,
    ) -> ImageRecord:
        size = manifest.config.size + desc.size + sum(layer.size for layer in manifest.layers)
        return ImageRecord(
            descriptor=Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size),
            config_digest=manifest.config.digest,
            names=names,
            created=config.created,
            size=size,
            platform=Platform(
                architecture=config.architecture, os=config.os, variant=config.variant
            ),
        )

    def read_manifest(self, desc: Descriptor) -> Manifest:
        data = self.cas.read_bytes(desc, limit=MAX_JSON_BYTES)
        manifest = Manifest.from_bytes(data, what=f"manifest {desc.digest}")
        if desc.media_type and manifest.media_type != desc.media_type:
            raise StoreError(
                f"manifest {desc.digest}: mediaType {manifest.media_type!r} does not match"
                f" its descriptor ({desc.media_type!r})"
            )
        return manifest

    def load_image(self, desc: Descriptor, *, platform: Platform | None = None) -> ImageValue:
        """The image behind a manifest (or, for an index, the manifest for ``platform``)."""
        if is_index(desc.media_type):
            index = Index.from_bytes(
                self.cas.read_bytes(desc, limit=MAX_JSON_BYTES), what=f"index {desc.digest}"
            )
            want = platform or Platform.host()
            for child in index.manifests:
                if is_manifest(child.media_type) and (
                    child.platform is None or want.matches(child.platform)
                ):
                    return self.load_image(child)
            raise StoreError(f"index {desc.digest} has no manifest for platform {want}")
        raw_manifest = self.cas.read_bytes(desc, limit=MAX_JSON_BYTES)
        manifest = Manifest.from_bytes(raw_manifest, what=f"manifest {desc.digest}")
        raw_config = self.cas.read_bytes(manifest.config, limit=MAX_CONFIG_BYTES)
        config = ImageConfig.from_bytes(raw_config, what=f"config {manifest.config.digest}")
        if len(config.diff_ids) != len(manifest.layers):
            raise StoreError(
                f"image {desc.digest}: config has {len(config.diff_ids)} diff_ids for"
                f" {len(manifest.layers)} layers"
            )
        layers: tuple[Layer, ...] = tuple(
            StoreLayer(cas=self.cas, descriptor=d, diff_id=diff)
            for d, diff in zip(manifest.layers, config.diff_ids, strict=True)
        )
        return ImageValue.from_parts(
            raw_manifest=raw_manifest, raw_config=raw_config, layers=layers
        )

    def entries(self) -> tuple[IndexEntry, ...]:
        """The images of index.json in order, each with all its names; reads no blob."""
        order: list[Digest] = []
        found: dict[Digest, tuple[Descriptor, list[str]]] = {}
        for desc in self.read_index().manifests:
            if desc.digest not in found:
                order.append(desc.digest)
                plain = Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size)
                found[desc.digest] = (plain, [])
            names = found[desc.digest][1]
            names.extend(n for n in _names(desc) if n not in names)
        return tuple(
            IndexEntry(descriptor=found[d][0], names=tuple(sorted(found[d][1]))) for d in order
        )

    def image_id(self, entry: IndexEntry) -> Digest | None:
        """The image ID: the config digest (an index's own digest); None if unreadable."""
        if not is_manifest(entry.descriptor.media_type):
            return entry.digest
        try:
            return self.read_manifest(entry.descriptor).config.digest
        except StoreError:
            return None

    def lookup(self, text: str) -> tuple[IndexEntry, bool]:
        """Docker's image lookup: name[:tag], name@digest, a digest, or an image ID prefix.

        Returns the entry and whether ``text`` named it by digest or ID rather than by a name.
        Names and manifest digests come from index.json alone, so a damaged image can still be
        found (and untagged); digests and ID prefixes read manifests, skipping unreadable ones.
        """
        ref = text.strip()
        entries = self.entries()
        ids: dict[Digest, Digest | None] = {}

        def image_id(entry: IndexEntry) -> Digest | None:
            if entry.digest not in ids:
                ids[entry.digest] = self.image_id(entry)
            return ids[entry.digest]

        if is_digest(ref):
            digest = Digest.parse(ref)
            hit = next((e for e in entries if e.digest == digest), None)
            hit = hit or next((e for e in entries if image_id(e) == digest), None)
            if hit is None:
                raise StoreError(f"No such image: {text}")
            return hit, True
        parsed: Reference | None
        try:
            parsed = parse(ref)
        except InvalidReferenceError:
            parsed = None
        if parsed is not None:
            if parsed.digest:
                digest = Digest.parse(parsed.digest)
                hit = next((e for e in entries if e.digest == digest), None)
                if hit is not None:
                    return hit, True
            else:
                full = str(parsed)
                hit = next((e for e in entries if full in e.names), None)
                if hit is not None:
                    return hit, False
        hexpart = ref.removeprefix("sha256:")
        if hexpart and len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart):
            hits = [
                e for e in entries if (i := image_id(e)) is not None and i.hex.startswith(hexpart)
            ]
            if len({image_id(e) for e in hits}) == 1:
                return hits[0], True
            if hits:
                raise StoreError(f"image ID prefix {hexpart!r} is ambiguous")
        if parsed is None:
            parse(ref)  # raises the reference error in Docker's words
        raise StoreError(f"No such image: {text}")

    def resolve(self, ref: str) -> ImageRecord:
        """The image ``ref`` names (see :meth:`lookup`), described from its manifest and config."""
        entry, _ = self.lookup(ref)
        return self._describe(entry.descriptor, entry.names)

    def list_images(self) -> tuple[ImageRecord, ...]:
        """One record per distinct manifest in index.json, with all its names."""
        return tuple(self._describe(e.descriptor, e.names) for e in self.entries())

    def _describe(self, desc: Descriptor, names: tuple[str, ...]) -> ImageRecord:
        if is_index(desc.media_type):
            return ImageRecord(
                descriptor=desc, config_digest=desc.digest, names=names, size=desc.size
            )
        manifest = self.read_manifest(desc)
        raw_config = self.cas.read_bytes(manifest.config, limit=MAX_CONFIG_BYTES)
        config = ImageConfig.from_bytes(raw_config, what=f"config {manifest.config.digest}")
        return self._record(desc, names, manifest, config)

    def tag(self, source: str, target: str) -> ImageRecord:
        """Give the image ``source`` resolves to the additional name ``target``."""
        record = self.resolve(source)
        ref = str(parse(target))
        if "@" in ref:
            raise InvalidReferenceError(f"cannot tag with a digest reference: {ref}")
        with self.lease():
            entry = record.descriptor.with_annotations(((REF_NAME, ref), (CONTAINERD_NAME, ref)))
            self._update_index((entry,), (ref,))
        return self.resolve(ref)

    def add_index_entry(self, desc: Descriptor, names: tuple[str, ...] = ()) -> None:
        """Record an already-stored manifest or index under ``names`` (or as dangling)."""
        if not self.cas.has(desc.digest):
            raise StoreError(f"cannot reference blob {desc.digest}: it is not in the store")
        refs = tuple(str(parse(n)) for n in names)
        plain = Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size)
        with self.lease():
            entries = tuple(
                plain.with_annotations(((REF_NAME, r), (CONTAINERD_NAME, r))) for r in refs
            ) or (plain,)
            self._update_index(entries, refs)

    def untag(self, name: str) -> bool:
        """Remove one name; the image itself stays until nothing references it and GC runs."""
        ref = str(parse(name))
        with self.lease(), self._index_lock():
            index = self.read_index()
            remaining = tuple(d for d in index.manifests if d.annotation(REF_NAME) != ref)
            if len(remaining) == len(index.manifests):
                return False
            self._write_index(Index(manifests=remaining, annotations=index.annotations))
        return True

    def remove_image(self, digest: Digest) -> bool:
        """Drop every index.json entry (every name) of the manifest ``digest``.

        Its blobs stay until a prune finds nothing else references them.
        """
        with self.lease(), self._index_lock():
            index = self.read_index()
            remaining = tuple(d for d in index.manifests if d.digest != digest)
            if len(remaining) == len(index.manifests):
                return False
            self._write_index(Index(manifests=remaining, annotations=index.annotations))
        return True

    def remove_dangling(self) -> int:
        """Drop every nameless index.json entry; returns how many went (prune uses it)."""
        with self._index_lock():
            index = self.read_index()
            named = tuple(d for d in index.manifests if d.annotation(REF_NAME))
            if len(named) != len(index.manifests):
                self._write_index(Index(manifests=named, annotations=index.annotations))
        return len(index.manifests) - len(named)

    # -- snapshots --------------------------------------------------------------------------

    def snapshot_dir(self, diff_ids: tuple[Digest, ...]) -> Path:
        """Where the unpacked rootfs of a layer stack lives: ``snapshots/<chain-id hex>``."""
        return self.root / paths.SNAPSHOTS / chain_id(diff_ids).hex


def _dedupe_dangling(entries: list[Descriptor]) -> tuple[Descriptor, ...]:
    """Drop nameless entries for manifests that still have a named (or earlier) entry."""
    named = {d.digest for d in entries if d.annotation(REF_NAME)}
    seen: set[Digest] = set()
    out: list[Descriptor] = []
    for d in entries:
        if d.annotation(REF_NAME) is None:
            if d.digest in named or d.digest in seen:
                continue
            seen.add(d.digest)
        out.append(d)
    return tuple(out)
