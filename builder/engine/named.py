"""Named build contexts (``--build-context NAME=VALUE``), answered as images.

BuildKit's rules (``frontend/dockerui/namedcontext.go``, ``dockerfile2llb``): a context replaces
the stage of its name, and any ``FROM``, ``COPY --from`` or ``RUN --mount=from`` reference that
normalises to its name (:func:`builder.plan.named.context_key`) instead of the image of that
name; ``scratch`` is never looked up. The value is, in buildx's order of detection:

* a git URL, or an http(s) URL (a tar archive is extracted, anything else becomes the one file
  ``/context``);
* ``docker-image://REF``: an image, looked up (or pulled) like a ``FROM`` image;
* ``oci-layout://PATH[:TAG|@DIGEST]``: an image in an OCI image layout on disk (the tag
  defaults to ``latest``; with no manifest of that name, a layout holding one manifest
  answers); its blobs are copied into the store, verified;
* anything else: a local directory, filtered by its own root ``.dockerignore``.

A directory, git or URL context becomes a one-layer image on scratch (files owned by 0:0, as
BuildKit's context transfer sends them), so every use goes through the image machinery and
every cache key that uses the context holds its manifest digest, hence its content. A context is
made the first time the build refers to it; unused ones cost nothing.
"""

from __future__ import annotations

import os
import stat
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol

from builder.context.local import LocalContext
from builder.context.prepare import fetch_tree
from builder.digest import Digest
from builder.engine.events import EventSink, VertexDone, VertexStarted
from builder.errors import BuildError, ContextError, StoreError
from builder.oci.config import History
from builder.oci.descriptor import Descriptor, Platform
from builder.oci.image import ImageValue, empty_image, image_from
from builder.oci.layer_write import LayerEntry, scan_dir
from builder.oci.manifest import Index
from builder.oci.mediatype import is_index, is_manifest
from builder.oci.mutate import append_layer
from builder.oci.tarformat import EntryType
from builder.plan import ResolvedImage
from builder.plan.named import context_key
from builder.plan.scope import empty_image as empty_config
from builder.store import REF_NAME, Store
from builder.urls import is_git_url, is_http_url, redact

DOCKER_IMAGE = "docker-image://"
OCI_LAYOUT = "oci-layout://"
_MAX_INDEX_BYTES = 4 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class NamedContext:
    """One ``--build-context``: ``name`` as given, ``key`` its lookup key, ``value`` as given."""

    name: str
    key: str
    value: str


def parse_build_context(text: str) -> NamedContext:
    """``NAME=VALUE`` as buildx parses it (the name is normalised like an image reference)."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise ContextError(f"invalid context value: {text}, expected key=value")
    key = context_key(name)
    if key is None:
        raise ContextError(f"invalid context name {name}: invalid reference format")
    if not value:
        raise ContextError(f"invalid context value: {text}: the value is empty")
    return NamedContext(name=name, key=key, value=value)


def check_contexts(contexts: Sequence[NamedContext]) -> None:
    """Local directories must exist before anything runs (buildx checks them up front)."""
    for ctx in contexts:
        value = ctx.value
        if is_git_url(value) or is_http_url(value) or value.startswith((DOCKER_IMAGE, OCI_LAYOUT)):
            continue
        try:
            st = os.stat(value)
        except OSError as exc:
            raise ContextError(
                f"failed to get build context {ctx.name}: stat {value}: {exc.strerror}"
            ) from None
        if not stat.S_ISDIR(st.st_mode):
            raise ContextError(f"failed to get build context path {value}: not a directory")


class Images(Protocol):
    """What the planner and the scheduler need of an image resolver."""

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage: ...

    def image(self, digest: Digest) -> ImageValue: ...


class NamedContexts:
    """A resolver answering named contexts first, else asking ``inner`` (the store/registry)."""

    def __init__(
        self,
        inner: Images,
        contexts: Sequence[NamedContext],
        *,
        store: Store,
        sink: EventSink,
        next_vertex: Callable[[], int],
        source_date_epoch: int | None = None,
    ) -> None:
        self.inner = inner
        self.contexts = {c.key: c for c in contexts}  # a repeated name: the last one wins
        self.store = store
        self.sink = sink
        self.next_vertex = next_vertex
        self.source_date_epoch = source_date_epoch
        self._made: dict[tuple[str, str], ResolvedImage] = {}
        self._images: dict[Digest, ImageValue] = {}
        self._lock = threading.Lock()

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(self.contexts)

    def resolve(self, ref: str, platform: Platform) -> ResolvedImage:
        key = context_key(ref)
        ctx = self.contexts.get(key) if key is not None else None
        if ctx is None:
            return self.inner.resolve(ref, platform)
        found = self._made.get((ctx.key, str(platform)))
        if found is None:
            found = self._make(ctx, platform)
            self._made[(ctx.key, str(platform))] = found
        return found

    def image(self, digest: Digest) -> ImageValue:
        with self._lock:
            image = self._images.get(digest)
        return image if image is not None else self.inner.image(digest)

    # -- making the images -----------------------------------------------------------------

    def _make(self, ctx: NamedContext, platform: Platform) -> ResolvedImage:
        value = ctx.value
        if value.startswith(DOCKER_IMAGE):
            ref = value.removeprefix(DOCKER_IMAGE)
            if ref == "scratch":
                scratch = image_from(empty_image(platform).manifest, empty_config(platform), ())
                return self._keep(ctx, scratch)
            try:
                return self.inner.resolve(ref, platform)
            except BuildError as err:
                raise type(err)(f"build context {ctx.name}={value}: {err.message}") from None
        n = self.next_vertex()
        label = f"[context {ctx.name}] load {redact(value)}"
        self.sink.emit(VertexStarted(vertex=n, name=label))
        try:
            if value.startswith(OCI_LAYOUT):
                image = _from_layout(self.store, value, platform)
                resolved = self._keep(ctx, image)
            elif is_git_url(value) or is_http_url(value):
                tree = fetch_tree(value, store_root=self.store.root)
                try:
                    layer_image = self._tree_image(ctx, tree.directory, platform, ignore=False)
                finally:
                    tree.close()
                resolved = self._keep(ctx, layer_image)
            else:
                layer_image = self._tree_image(ctx, Path(value), platform, ignore=True)
                resolved = self._keep(ctx, layer_image)
        except BuildError as err:
            self.sink.emit(VertexDone(vertex=n, error=err.message))
            if redact(value) in err.message:
                raise
            raise type(err)(f"build context {ctx.name}={redact(value)}: {err.message}") from None
        except OSError as exc:
            message = f"build context {ctx.name}={redact(value)}: {exc.strerror or exc}"
            self.sink.emit(VertexDone(vertex=n, error=message))
            raise ContextError(message) from None
        self.sink.emit(VertexDone(vertex=n))
        return resolved

    def _keep(self, ctx: NamedContext, image: ImageValue) -> ResolvedImage:
        """Remember ``image`` for the scheduler (which asks for its layers by digest)."""
        with self._lock:
            self._images[image.digest] = image
        return ResolvedImage(ref=f"context:{ctx.key}", digest=image.digest, config=image.config)

    def _tree_image(
        self, ctx: NamedContext, directory: Path, platform: Platform, *, ignore: bool
    ) -> ImageValue:
        """A one-layer image of ``directory`` (with its ``.dockerignore`` when ``ignore``)."""
        excluded = None
        if ignore:
            local = LocalContext.open(directory)
            if local.matcher is not None:
                excluded = local.excluded
        entries = _entries(directory, excluded)
        layer = self.store.write_layer(entries, source_date_epoch=self.source_date_epoch)
        # BuildKit's emptyImage config (PATH, WorkingDir /) under the context's files
        base = image_from(empty_image(platform).manifest, empty_config(platform), ())
        return append_layer(
            base,
            layer,
            history=History(
                created_by=f"named context {ctx.name}",
                comment="buildkit.exporter.image.v0",
            ),
        )


def _entries(directory: Path, excluded: Callable[[str], bool] | None) -> Iterator[LayerEntry]:
    """``directory``'s entries owned by 0:0; without what ``excluded`` drops, keeping an
    excluded directory only when something below it is kept (a ``!`` exception)."""
    try:
        found = scan_dir(directory)
    except OSError as exc:
        raise ContextError(f"cannot read {directory}: {exc.strerror}") from None
    if excluded is None:
        kept = found
    else:
        chosen = {e.path for e in found if not excluded(e.path)}
        parents = {p for path in chosen for p in _parents(path)}
        kept = [e for e in found if e.path in chosen or e.path in parents]
    paths = {e.path for e in kept}
    for entry in kept:
        if entry.type is EntryType.HARDLINK and entry.linkname not in paths:
            # its first path was excluded: the file itself is kept
            full = directory / entry.path
            entry = replace(
                entry, type=EntryType.FILE, linkname="", size=full.lstat().st_size, source=str(full)
            )
        yield replace(entry, uid=0, gid=0)


def _parents(path: str) -> Iterator[str]:
    parts = path.split("/")
    for i in range(1, len(parts)):
        yield "/".join(parts[:i])


def _from_layout(store: Store, value: str, platform: Platform) -> ImageValue:
    """The image ``oci-layout://PATH[:TAG|@DIGEST]`` names, its blobs copied into ``store``."""
    spec = value.removeprefix(OCI_LAYOUT)
    path, at, digest_text = spec.partition("@")
    tag = "latest"
    head, colon, maybe_tag = path.rpartition(":")
    if colon and "/" not in maybe_tag:
        path, tag = head, maybe_tag
    root = Path(path)
    try:
        index = Index.from_bytes(
            _read(root / "index.json", _MAX_INDEX_BYTES), what=f"{path}/index.json"
        )
    except OSError as exc:
        raise ContextError(f"{path}: not an OCI image layout: index.json: {exc.strerror}") from None
    desc: Descriptor | None
    if at:
        want = Digest.parse(digest_text)
        desc = next((d for d in index.manifests if d.digest == want), None)
        if desc is None:
            raise ContextError(f"{path}: no manifest {want} in index.json")
    else:
        desc = next((d for d in index.manifests if d.annotation(REF_NAME) == tag), None)
        if desc is None and len(index.manifests) == 1:
            desc = index.manifests[0]
        if desc is None:
            raise ContextError(f"{path}: no image named {tag!r} in index.json")
    plain = Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size)
    if is_index(plain.media_type):
        child_index = Index.from_bytes(_blob(store, root, plain), what=f"index {plain.digest}")
        child = child_index.for_platform(platform)
        if child is None:
            raise ContextError(f"{path}: index {plain.digest} has no manifest for {platform}")
        plain = Descriptor(media_type=child.media_type, digest=child.digest, size=child.size)
    if not is_manifest(plain.media_type):
        raise ContextError(f"{path}: {plain.digest} is not an image manifest ({plain.media_type})")
    _blob(store, root, plain)
    manifest = store.read_manifest(plain)
    for blob in (manifest.config, *manifest.layers):
        _blob(store, root, blob)
    return store.load_image(plain)


def _read(path: Path, limit: int) -> bytes:
    with open(path, "rb") as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ContextError(f"{path}: larger than {limit} bytes")
    return data


def _blob(store: Store, root: Path, desc: Descriptor) -> bytes:
    """Copy blob ``desc`` of the layout at ``root`` into the store (verified); returns it when
    small (manifests and indexes), else b""."""
    if not store.has_blob(desc.digest):
        blob = root / "blobs" / desc.digest.algorithm / desc.digest.hex
        try:
            with open(blob, "rb") as fh:
                store.put_blob(fh, media_type=desc.media_type, expected=desc)
        except OSError as exc:
            raise ContextError(f"{root}: blob {desc.digest}: {exc.strerror}") from None
        except StoreError as err:
            raise ContextError(f"{root}: blob {desc.digest}: {err.message}") from None
    if desc.size <= _MAX_INDEX_BYTES and (
        is_index(desc.media_type) or is_manifest(desc.media_type)
    ):
        return store.read_blob(desc, limit=_MAX_INDEX_BYTES)
    return b""


__all__ = [
    "DOCKER_IMAGE",
    "OCI_LAYOUT",
    "NamedContext",
    "NamedContexts",
    "check_contexts",
    "parse_build_context",
]
