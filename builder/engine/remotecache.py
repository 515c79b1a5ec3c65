"""``--cache-to`` / ``--cache-from``: the build cache shared through a registry or a directory.

An export is BuildKit's cache manifest (``builder.oci.cacheconfig``): a cache config mapping
each exported step's cache key to the layer it made, and those layer blobs. ``type=registry``
pushes them to a repository (the manifest under the ref's tag); ``type=local`` writes an OCI
image layout directory (``index.json`` names the manifest with the tag ``latest``). ``mode=min``
exports the steps whose layers are in the built image, ``mode=max`` every step of every stage.

An import reads only the manifest and the cache config when the build starts. A step that misses
the store's cache and whose key is in an imported config is a hit, ``CACHED`` like any other; its
one layer blob is fetched into the store, and a store cache record written, only when something
reads the layer (a later step's rootfs, the image), so the layers of a stage that the build only
needs by key (``COPY --from`` hit by its source key) are never fetched. A source that cannot be
read is a warning, as in BuildKit; the build goes on.
"""

from __future__ import annotations

import io
import json
import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Final, Protocol

from builder.digest import Digest
from builder.engine.events import VertexDone, VertexStatus, Warning_
from builder.engine.vertices import Vertices
from builder.errors import BuildError, ManifestNotFoundError, RegistryError, StoreError
from builder.oci.cacheconfig import CachedLayer, config_descriptor, decode, encode, mount_key
from builder.oci.compress import DecompressingReader, compressor
from builder.oci.descriptor import Descriptor
from builder.oci.image import Layer
from builder.oci.layer_apply import apply_layer
from builder.oci.mediatype import Compression, MediaType, layer_compression, layer_media_type
from builder.plan import RunStep, Step
from builder.store import CacheRecord, Store
from builder.store.fsutil import atomic_write
from builder.store.paths import CACHEMOUNTS
from builder.syntax.ir import MountType
from builder.timings import phase

LOCAL_TAG: Final = "latest"
REF_NAME: Final = "org.opencontainers.image.ref.name"
_MODES: Final = ("min", "max")
_COMPRESSIONS: Final = ("gzip", "zstd")
READ_CHUNK: Final = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheSpec:
    """One ``--cache-to`` or ``--cache-from`` value."""

    kind: str  # "registry" | "local"
    ref: str = ""  # type=registry
    directory: str = ""  # type=local: dest= (export) or src= (import)
    mode: str = "min"
    compression: str = "gzip"
    mounts: bool = False  # export cache-mount contents too (beyond BuildKit)

    @property
    def label(self) -> str:
        return self.ref if self.kind == "registry" else self.directory


def parse_cache_spec(text: str, *, export: bool) -> CacheSpec:
    """BuildKit's CSV form; a bare reference means ``type=registry,ref=REF``."""
    flag = "--cache-to" if export else "--cache-from"
    if "=" not in text:
        text = f"type=registry,ref={text}"
    fields: dict[str, str] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or not key:
            raise BuildError(f"invalid {flag} value {text!r}: expected KEY=VALUE, got {part!r}")
        fields[key] = value.strip()
    kind = fields.pop("type", "")
    allowed = {
        ("registry", True): {"ref", "mode", "compression", "mounts"},
        ("registry", False): {"ref"},
        ("local", True): {"dest", "mode", "compression", "mounts"},
        ("local", False): {"src"},
    }.get((kind, export))
    if allowed is None:
        raise BuildError(f"{flag}: unsupported cache type {kind!r} (use registry or local)")
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise BuildError(
            f"{flag} type={kind}: unknown attribute {unknown[0]!r}"
            f" (expected {', '.join(sorted(allowed))})"
        )
    mode = fields.get("mode", "min")
    if mode not in _MODES:
        raise BuildError(f"{flag}: invalid mode {mode!r} (use min or max)")
    compression = fields.get("compression", "gzip")
    if compression not in _COMPRESSIONS:
        raise BuildError(f"{flag}: invalid compression {compression!r} (use gzip or zstd)")
    mounts = fields.get("mounts", "false").lower()
    if mounts not in ("true", "false"):
        raise BuildError(f"{flag}: invalid mounts {mounts!r} (use true or false)")
    where = fields.get("ref" if kind == "registry" else "dest" if export else "src", "")
    if not where:
        need = "ref" if kind == "registry" else "dest" if export else "src"
        raise BuildError(f"{flag} type={kind}: {need}= is required")
    if kind == "registry":
        # lazy: reference parsing only for registry caches
        from builder.reference import parse

        parse(where)  # a bad ref fails before the build
        return CacheSpec(
            kind=kind, ref=where, mode=mode, compression=compression, mounts=mounts == "true"
        )
    return CacheSpec(
        kind=kind, directory=where, mode=mode, compression=compression, mounts=mounts == "true"
    )


# -- where caches live ---------------------------------------------------------------------


class Backend(Protocol):
    """A registry repository or an OCI layout directory holding one cache manifest."""

    def read_manifest(self) -> bytes | None: ...
    def read_blob(self, desc: Descriptor, limit: int) -> bytes: ...
    def fetch_blob(self, desc: Descriptor, store: Store) -> None: ...
    def put_blob(self, desc: Descriptor, opener: Callable[[], BinaryIO]) -> None: ...
    def put_manifest(self, data: bytes, media_type: str) -> None: ...


class _MemorySink:
    def __init__(self) -> None:
        self.buffer = io.BytesIO()

    def write(self, data: bytes, /) -> int:
        return self.buffer.write(data)

    def abort(self) -> None:
        self.buffer = io.BytesIO()


class RegistryBackend:
    def __init__(self, ref: str, *, push: bool) -> None:
        # lazy: the registry client (httpx) loads only for registry caches
        from builder.reference import parse
        from builder.registry.client import RegistryClient

        reference = parse(ref)
        self._tag = reference.digest or reference.tag or "latest"
        self._client = RegistryClient.from_environment()
        self._repo = self._client.repository(reference.domain, reference.path, label=ref, push=push)

    def close(self) -> None:
        self._client.close()

    def read_manifest(self) -> bytes | None:
        try:
            return self._client.get_manifest(self._repo, self._tag).data
        except ManifestNotFoundError:
            return None

    def read_blob(self, desc: Descriptor, limit: int) -> bytes:
        if desc.size > limit:
            raise StoreError(f"{self._repo.label}: blob {desc.digest} is over {limit} bytes")
        data = self._client.fetch_blob(self._repo, desc, _MemorySink).buffer.getvalue()
        if Digest.of_bytes(data) != desc.digest:
            raise RegistryError(f"{self._repo.label}: blob {desc.digest}: wrong content")
        return data

    def fetch_blob(self, desc: Descriptor, store: Store) -> None:
        # lazy: the pull code loads only when a step hits an imported record
        from builder.registry.remote import download_blob

        download_blob(self._client, store, self._repo, desc)

    def put_blob(self, desc: Descriptor, opener: Callable[[], BinaryIO]) -> None:
        self._client.upload_blob(self._repo, desc, opener)

    def put_manifest(self, data: bytes, media_type: str) -> None:
        self._client.put_manifest(self._repo, self._tag, data, media_type)


class LocalBackend:
    """An OCI image layout directory (``oci-layout``, ``index.json``, ``blobs/sha256/``)."""

    def __init__(self, directory: str) -> None:
        self.root = Path(directory)

    def close(self) -> None:
        pass

    def _blob(self, digest: Digest) -> Path:
        return self.root / "blobs" / digest.algorithm / digest.hex

    def _index(self) -> list[dict[str, object]]:
        try:
            data = json.loads((self.root / "index.json").read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise StoreError(f"{self.root}/index.json: cannot read: {exc}") from None
        entries = data.get("manifests", []) if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise StoreError(f"{self.root}/index.json: not an OCI image index")
        return [e for e in entries if isinstance(e, dict)]

    def read_manifest(self) -> bytes | None:
        for entry in self._index():
            notes = entry.get("annotations", {})
            if isinstance(notes, dict) and notes.get(REF_NAME, LOCAL_TAG) == LOCAL_TAG:
                desc = Descriptor.from_json(entry, f"{self.root}/index.json entry")
                return self.read_blob(desc, 64 << 20)
        return None

    def read_blob(self, desc: Descriptor, limit: int) -> bytes:
        path = self._blob(desc.digest)
        try:
            data = path.read_bytes() if desc.size <= limit else b""
        except OSError as exc:
            raise StoreError(f"{path}: cannot read cache blob: {exc.strerror}") from None
        if Digest.of_bytes(data) != desc.digest:
            raise StoreError(f"{path}: content does not match {desc.digest}")
        return data

    def fetch_blob(self, desc: Descriptor, store: Store) -> None:
        with store.blob_lock(desc.digest) as present:
            if present:
                return
            path = self._blob(desc.digest)
            try:
                with path.open("rb") as src:
                    store.put_blob(src, media_type=desc.media_type, expected=desc)
            except OSError as exc:
                raise StoreError(f"{path}: cannot read cache blob: {exc.strerror}") from None

    def put_blob(self, desc: Descriptor, opener: Callable[[], BinaryIO]) -> None:
        path = self._blob(desc.digest)
        if path.exists():
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            with opener() as src, tmp.open("wb") as dst:
                while chunk := src.read(READ_CHUNK):
                    dst.write(chunk)
            tmp.replace(path)
        finally:
            tmp.unlink(missing_ok=True)

    def put_manifest(self, data: bytes, media_type: str) -> None:
        desc = Descriptor(media_type=media_type, digest=Digest.of_bytes(data), size=len(data))
        self.put_blob(desc, lambda: io.BytesIO(data))
        keep = [
            e
            for e in self._index()
            if not (
                isinstance(n := e.get("annotations", {}), dict) and n.get(REF_NAME) == LOCAL_TAG
            )
        ]
        entry = desc.with_annotations(((REF_NAME, LOCAL_TAG),)).to_json()
        index = {"schemaVersion": 2, "mediaType": MediaType.OCI_INDEX, "manifests": [*keep, entry]}
        atomic_write(self.root / "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        atomic_write(self.root / "index.json", json.dumps(index, separators=(",", ":")).encode())


def open_backend(spec: CacheSpec, *, push: bool) -> RegistryBackend | LocalBackend:
    if spec.kind == "registry":
        return RegistryBackend(spec.ref, push=push)
    return LocalBackend(spec.directory)


# -- import --------------------------------------------------------------------------------


class CacheImporter:
    """``--cache-from``: finds a step's key in the imported cache configs (first source wins)
    and makes it a store cache record, fetching the one layer blob it names."""

    def __init__(
        self, store: Store, specs: Iterable[CacheSpec], warn: Callable[[str], None]
    ) -> None:
        self.store = store
        self.specs = tuple(specs)
        self._warn = warn
        self._lock = threading.Lock()
        self._entries: dict[Digest, tuple[CachedLayer, RegistryBackend | LocalBackend]] | None
        self._entries = None
        self._backends: list[RegistryBackend | LocalBackend] = []
        self._mounts: dict[str, tuple[CachedLayer, RegistryBackend | LocalBackend]] = {}
        self.fetched: list[Digest] = []  # blobs fetched, in order

    def load(self) -> int:
        """Read every source's manifest and cache config; the number of records found."""
        with self._lock:
            if self._entries is not None:
                return len(self._entries)
            entries: dict[Digest, tuple[CachedLayer, RegistryBackend | LocalBackend]] = {}
            for spec in self.specs:
                try:
                    backend = open_backend(spec, push=False)
                    self._backends.append(backend)
                    manifest = backend.read_manifest()
                    if manifest is None:
                        self._warn(f"cache {spec.label}: not found, nothing imported")
                        continue
                    what = f"cache {spec.label}"
                    config = backend.read_blob(config_descriptor(manifest, what), 64 << 20)
                    for key, layer in decode(config, f"{what} config").items():
                        if layer.mount:
                            self._mounts.setdefault(layer.mount, (layer, backend))
                        else:
                            entries.setdefault(key, (layer, backend))
                except BuildError as err:
                    self._warn(f"failed to import cache {spec.label}: {err.message}")
            self._entries = entries
            return len(entries)

    def find(self, key: Digest) -> CacheRecord | None:
        """The imported record of ``key``, or None; nothing is fetched yet (see ``layer``)."""
        self.load()
        assert self._entries is not None
        found = self._entries.get(key)
        if found is None:
            return None
        layer = found[0]
        metadata = [("diff_id", str(layer.diff_id))]
        if layer.chain is not None:
            metadata.append(("chain", str(layer.chain)))
        return CacheRecord(
            key=key, roots=(layer.blob,), metadata=tuple(metadata), created=layer.created
        )

    def layer(self, record: CacheRecord) -> Layer:
        """The layer of an imported record, fetched into the store (and the record written
        to the store's cache) only when something reads it: a step's rootfs, the image."""
        diff = record.get("diff_id")
        assert diff is not None
        assert record.roots
        return ImportedLayer(
            importer=self, record=record, descriptor=record.roots[0], diff_id=Digest.parse(diff)
        )

    def fetch(self, record: CacheRecord) -> None:
        """Fetch an imported record's blob into the store and write the record there."""
        assert self._entries is not None
        layer, backend = self._entries[record.key]
        backend.fetch_blob(layer.blob, self.store)
        with self._lock:
            self.fetched.append(layer.blob.digest)
        self.store.cache.put(record)

    def seed(self, cache_id: str, directory: Path) -> None:
        """Fill the new cache-mount directory of ``cache_id`` from an imported ``mounts=true``
        export, if one has it (its layer is fetched only now, when a step needs the mount)."""
        self.load()
        found = self._mounts.get(cache_id)
        if found is None:
            return
        layer, backend = found
        try:
            backend.fetch_blob(layer.blob, self.store)
            stream = _opener(self.store, layer.blob)()
            with stream:
                apply_layer(stream, directory, expected_diff_id=layer.diff_id, name=cache_id)
        except BuildError as err:
            self._warn(f"cache mount {cache_id}: {err.message}; it starts empty")

    def close(self) -> None:
        for backend in self._backends:
            backend.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedLayer:
    """A layer of an imported cache record: fetched the first time it is opened."""

    importer: CacheImporter
    record: CacheRecord
    descriptor: Descriptor
    diff_id: Digest

    def open_compressed(self) -> BinaryIO:
        if not self.importer.store.cas.has(self.descriptor.digest):
            self.importer.fetch(self.record)
        return _opener(self.importer.store, self.descriptor)()


# -- export --------------------------------------------------------------------------------


def exported_layers(store: Store, keys: Iterable[Digest]) -> tuple[CachedLayer, ...]:
    """The store's cache records of ``keys`` (each once, in order) as cache layers."""
    out: list[CachedLayer] = []
    seen: set[Digest] = set()
    for key in keys:
        record = store.cache.get(key)
        diff = record.get("diff_id") if record is not None else None
        if record is None or diff is None or not record.roots or key in seen:
            continue
        seen.add(key)
        chain = record.get("chain")
        out.append(
            CachedLayer(
                key=key,
                blob=record.roots[0],
                diff_id=Digest.parse(diff),
                created=record.created,
                chain=Digest.parse(chain) if chain else None,
            )
        )
    return tuple(out)


def mount_layers(
    store: Store, mounts: Iterable[tuple[str, Path]], created: str
) -> tuple[CachedLayer, ...]:
    """Cache layers of the cache-mount directories ``(id, directory)`` that exist."""
    out: list[CachedLayer] = []
    for cache_id, directory in mounts:
        if not directory.is_dir():
            continue
        layer = store.write_layer(directory)
        out.append(
            CachedLayer(
                key=mount_key(cache_id),
                blob=layer.descriptor,
                diff_id=layer.diff_id,
                created=created,
                mount=cache_id,
            )
        )
    return tuple(out)


def _opener(store: Store, desc: Descriptor) -> Callable[[], BinaryIO]:
    """Opens the store's blob ``desc``, verified while it streams."""
    # lazy: the store's layer type loads its layout module
    from builder.store import StoreLayer

    return StoreLayer(cas=store.cas, descriptor=desc, diff_id=desc.digest).open_compressed


def _recompressed(store: Store, layer: CachedLayer, compression: Compression) -> CachedLayer:
    """``layer`` with its blob in ``compression`` (written into the store when it is not)."""
    if layer_compression(layer.blob.media_type) is compression:
        return layer
    media_type = layer_media_type(compression)
    with store.lease(), store.blob_writer(media_type=media_type) as writer:
        with _opener(store, layer.blob)() as raw:
            reader = DecompressingReader(raw, max_bytes=1 << 62, name=f"layer {layer.blob.digest}")
            packer = compressor(compression)
            while chunk := reader.read(READ_CHUNK):
                writer.write(packer.compress(chunk))
            writer.write(packer.flush())
        desc = writer.commit()
    return CachedLayer(
        key=layer.key,
        blob=desc,
        diff_id=layer.diff_id,
        created=layer.created,
        mount=layer.mount,
        chain=layer.chain,
    )


def export_cache(
    store: Store, spec: CacheSpec, layers: tuple[CachedLayer, ...], status: Callable[[str], None]
) -> Digest:
    """Write ``layers`` and their cache manifest to ``spec``; the manifest's digest."""
    compression = Compression.ZSTD if spec.compression == "zstd" else Compression.GZIP
    layers = tuple(_recompressed(store, layer, compression) for layer in layers)
    config, manifest = encode(layers)
    backend = open_backend(spec, push=True)
    try:
        done: set[Digest] = set()
        for layer in layers:
            if layer.blob.digest in done:
                continue
            done.add(layer.blob.digest)
            blob = layer.blob
            backend.put_blob(blob, _opener(store, blob))
            status(f"writing layer {blob.digest} done")
        config_desc = config_descriptor(manifest, "cache manifest")
        backend.put_blob(config_desc, lambda: io.BytesIO(config))
        status(f"writing config {config_desc.digest} done")
        backend.put_manifest(manifest, MediaType.OCI_INDEX)
        digest = Digest.of_bytes(manifest)
        status(f"writing cache manifest {digest} done")
        return digest
    finally:
        backend.close()


# -- the build's side: --cache-from before the steps, --cache-to after the image --------------


def import_caches(specs: tuple[CacheSpec, ...], store: Store, vertices: Vertices) -> CacheImporter:
    """``--cache-from``: each source's manifest and cache config read up front, as BuildKit's
    "importing cache manifest" does; the layers are fetched only for the steps that hit."""
    sink = vertices.sink
    importer = CacheImporter(store, specs, lambda text: sink.emit(Warning_(message=text)))
    labels = ", ".join(spec.label for spec in specs)
    n = vertices.run(f"importing cache manifest from {labels}")
    with phase("cache import (manifests, configs)"):
        found = importer.load()
    sink.emit(VertexStatus(vertex=n, text=f"{found} cache records"))
    sink.emit(VertexDone(vertex=n))
    return importer


def export_caches(
    specs: tuple[CacheSpec, ...],
    store: Store,
    vertices: Vertices,
    records: Iterable[tuple[Digest, tuple[Digest, ...]]],
    *,
    built: tuple[Layer, ...],
    steps: tuple[Step, ...],
    created: str,
) -> None:
    """``--cache-to``: mode=min exports the steps (``records``: key and layer digests) whose
    layers the image has (``built``, before any squash), mode=max every step the build ran or
    found in the cache; ``mounts=true`` adds the cache mounts of ``steps``."""
    in_image = {layer.descriptor.digest for layer in built}
    records = tuple(records)
    for spec in specs:
        keys = [k for k, roots in records if spec.mode == "max" or set(roots) & in_image]
        where = f"registry {spec.ref}" if spec.kind == "registry" else f"directory {spec.directory}"
        n = vertices.run(f"exporting cache to {where}")

        def status(text: str, vertex: int = n) -> None:
            vertices.sink.emit(VertexStatus(vertex=vertex, text=text))

        try:
            with phase("cache export"), store.lease():
                layers = exported_layers(store, keys)
                if spec.mounts:
                    layers += mount_layers(store, _cache_mounts(store, steps), created)
                export_cache(store, spec, layers, status)
        except BuildError as err:
            vertices.sink.emit(VertexDone(vertex=n, error=err.message))
            raise
        vertices.sink.emit(VertexDone(vertex=n))


def _cache_mounts(store: Store, steps: tuple[Step, ...]) -> tuple[tuple[str, Path], ...]:
    """``(id, directory)`` of each cache mount the build's RUN steps use (``mounts=true``)."""
    # lazy: only --cache-to ...,mounts=true
    from builder.engine.run import cache_mount_dir, cache_mount_id

    ids = {
        cache_mount_id(m)
        for step in steps
        if isinstance(step, RunStep)
        for m in step.mounts
        if m.mount.type is MountType.CACHE and m.mount.from_ is None
    }
    root = store.root / CACHEMOUNTS
    return tuple((i, cache_mount_dir(root, "", i)) for i in sorted(ids))
