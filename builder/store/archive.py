"""Import docker-archive / OCI archive tars and plain rootfs tars into the store; save images.

Importing streams the archive once: every regular member is hashed into the store while it is
read (``blobs/sha256/<hex>`` members must hash to their name), small JSON members are kept for
the manifests. Layers are checked against the config's diff_ids before any name is written.
Anything malformed, truncated or inconsistent raises one ``StoreError`` line naming the archive
and the member.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, BinaryIO, Final

from builder.digest import Digest, Hasher
from builder.errors import DigestMismatchError, LayerError, StoreError
from builder.oci._json import as_object, canonical_json, get_list, get_str
from builder.oci.archive_write import ArchiveFormat, ArchiveImage, write_archive
from builder.oci.compress import Compressor, DecompressingReader, compressor, detect
from builder.oci.config import ContainerConfig, History, ImageConfig, format_created
from builder.oci.descriptor import Descriptor, Platform
from builder.oci.image import ImageValue, Layer, empty_image, image_from
from builder.oci.manifest import Index, Manifest, descriptor_for
from builder.oci.mediatype import (
    Compression,
    MediaType,
    is_config,
    is_index,
    is_layer,
    is_manifest,
    layer_media_type,
)
from builder.oci.mutate import append_layer
from builder.oci.tarformat import EntryType, TarLimits, TarReader, unpack_limit
from builder.reference import parse
from builder.store.cas import BlobWriter
from builder.store.layout import CONTAINERD_NAME, REF_NAME, ImageRecord, Store, StoreLayer

if TYPE_CHECKING:
    from typing_extensions import Buffer

MAX_JSON_MEMBER: Final = 20 * 1024 * 1024  # containerd's importer jsonLimit (CVE-2023-25153)
MAX_JSON_KEPT: Final = 64 * 1024 * 1024  # JSON members held in memory at once; rest re-read
_JSON_NAMES: Final = ("manifest.json", "index.json", "oci-layout", "repositories")


@dataclass(frozen=True, slots=True, kw_only=True)
class _Member:
    digest: Digest
    size: int


class _Import:
    def __init__(self, store: Store, name: str) -> None:
        self.store = store
        self.name = name
        self.members: dict[str, _Member] = {}
        self.json: dict[str, bytes] = {}
        self.kept_bytes = 0

    def fail(self, detail: str) -> StoreError:
        return StoreError(f"{self.name}: {detail}")

    def read(self, stream: BinaryIO, limits: TarLimits) -> None:
        try:
            reader = io.BufferedReader(
                DecompressingReader(stream, max_bytes=limits.max_bytes, name=self.name),
                buffer_size=1 << 20,
            )
            tar = TarReader(reader, limits=limits)
            while (hdr := tar.next()) is not None:
                if hdr.type is not EntryType.FILE:
                    continue
                path = "/".join(p for p in hdr.name.split("/") if p not in ("", "."))
                self._member(path, hdr.size, tar)
        except DigestMismatchError:
            raise
        except LayerError as exc:
            raise self.fail(f"corrupt or truncated archive: {exc.message}") from None

    def _member(self, path: str, size: int, tar: TarReader) -> None:
        expected: Digest | None = None
        if path.startswith("blobs/sha256/"):
            try:
                expected = Digest.from_hex(path.removeprefix("blobs/sha256/"))
            except StoreError:
                raise self.fail(f"member {path!r}: not a valid blob name") from None
        keep = (
            size <= MAX_JSON_MEMBER
            and self.kept_bytes + size <= MAX_JSON_KEPT
            and (path in _JSON_NAMES or path.endswith(".json"))
        )
        kept = bytearray()
        writer = BlobWriter(
            self.store.cas,
            media_type="application/octet-stream",
            expected_digest=expected,
            expected_size=size,
        )
        try:
            while chunk := tar.read(1 << 20):
                writer.write(chunk)
                if keep:
                    kept += chunk
            desc = writer.commit()
        except DigestMismatchError as exc:
            raise DigestMismatchError(
                f"{self.name}: member {path!r}: {exc.message}",
                expected=exc.expected,
                actual=exc.actual,
            ) from None
        finally:
            writer.abort()
        self.members[path] = _Member(digest=desc.digest, size=desc.size)
        if keep:
            self.json[path] = bytes(kept)
            self.kept_bytes += size

    def member(self, path: str, referrer: str) -> _Member:
        clean = "/".join(p for p in path.split("/") if p not in ("", "."))
        found = self.members.get(clean)
        if found is None:
            raise self.fail(f"{referrer} references {path!r}, which is not in the archive")
        return found

    def member_bytes(self, path: str, referrer: str) -> bytes:
        m = self.member(path, referrer)
        clean = "/".join(p for p in path.split("/") if p not in ("", "."))
        if clean in self.json:
            return self.json[clean]
        desc = Descriptor(media_type="application/octet-stream", digest=m.digest, size=m.size)
        return self.store.cas.read_bytes(desc, limit=MAX_JSON_MEMBER)


def _layer_facts(store: Store, blob: Descriptor) -> tuple[Compression, Digest]:
    """Compression of a stored layer blob and the digest of its uncompressed bytes."""
    with store.cas.open(blob) as raw:
        head = raw.read(4)
    compression = detect(head)
    if compression is Compression.NONE:
        return compression, blob.digest
    h = Hasher()
    with io.BufferedReader(store.cas.open(blob), buffer_size=1 << 20) as raw:
        cap = unpack_limit(blob.size)
        dec = DecompressingReader(raw, max_bytes=cap, name=f"layer {blob.digest}")
        while chunk := dec.read(1 << 20):
            h.update(chunk)
    return compression, h.digest()


def _docker_images(imp: _Import) -> list[tuple[Manifest, bytes, tuple[str, ...]]]:
    raw = imp.member_bytes("manifest.json", "the archive")
    try:
        entries = json.loads(raw)
    except ValueError as exc:
        raise imp.fail(f"manifest.json: invalid JSON: {exc}") from None
    if not isinstance(entries, list) or not entries:
        raise imp.fail("manifest.json: expected a non-empty array")
    out: list[tuple[Manifest, bytes, tuple[str, ...]]] = []
    for i, entry in enumerate(entries):
        what = f"manifest.json entry {i}"
        d = as_object(entry, f"{imp.name}: {what}")
        config_path = get_str(d, "Config", f"{imp.name}: {what}")
        raw_config = imp.member_bytes(config_path, what)
        config = ImageConfig.from_bytes(raw_config, what=f"{imp.name}: {config_path}")
        layer_paths = get_list(d, "Layers", f"{imp.name}: {what}")
        if len(layer_paths) != len(config.diff_ids):
            raise imp.fail(
                f"{what}: {len(layer_paths)} layers but the config lists"
                f" {len(config.diff_ids)} diff_ids"
            )
        blobs: list[tuple[Descriptor, Compression]] = []
        for path, diff_id in zip(layer_paths, config.diff_ids, strict=True):
            if not isinstance(path, str):
                raise imp.fail(f"{what}: layer paths must be strings")
            m = imp.member(path, what)
            blob = Descriptor(media_type=MediaType.OCI_LAYER, digest=m.digest, size=m.size)
            compression, actual = _layer_facts(imp.store, blob)
            if actual != diff_id:
                raise DigestMismatchError(
                    f"{imp.name}: layer {path!r} has diff_id {actual}, the config says {diff_id}",
                    expected=str(diff_id),
                    actual=str(actual),
                )
            blobs.append((blob, compression))
        # Docker schema 2 cannot describe zstd layers: such an image becomes OCI.
        docker = all(c is not Compression.ZSTD for _, c in blobs)
        layers = [replace(blob, media_type=layer_media_type(c, docker=docker)) for blob, c in blobs]
        manifest = Manifest(
            config=descriptor_for(
                raw_config, MediaType.DOCKER_CONFIG if docker else MediaType.OCI_CONFIG
            ),
            layers=tuple(layers),
            media_type=MediaType.DOCKER_MANIFEST if docker else MediaType.OCI_MANIFEST,
        )
        repo_tags = d.get("RepoTags")
        tags = tuple(
            t for t in (repo_tags if isinstance(repo_tags, list) else []) if isinstance(t, str)
        )
        out.append((manifest, raw_config, tags))
    return out


def _oci_entries(imp: _Import) -> list[tuple[Descriptor, tuple[str, ...]]]:
    raw = imp.member_bytes("index.json", "the archive")
    index = Index.from_bytes(raw, what=f"{imp.name}: index.json")
    out: list[tuple[Descriptor, tuple[str, ...]]] = []
    for desc in index.manifests:
        if not (is_manifest(desc.media_type) or is_index(desc.media_type)):
            continue
        name = desc.annotation(CONTAINERD_NAME) or ""
        if not name:
            ref_name = desc.annotation(REF_NAME) or ""
            name = ref_name if "/" in ref_name or ":" in ref_name else ""
        plain = Descriptor(media_type=desc.media_type, digest=desc.digest, size=desc.size)
        _verify_tree(imp, plain)
        out.append((plain, (name,) if name else ()))
    return out


def _verify_tree(imp: _Import, desc: Descriptor, depth: int = 0) -> None:
    if depth > 8:
        raise imp.fail(f"index nesting too deep at {desc.digest}")
    if not imp.store.cas.has(desc.digest):
        raise imp.fail(f"blob {desc.digest} referenced by index.json is not in the archive")
    if is_index(desc.media_type):
        data = imp.store.cas.read_bytes(desc, limit=MAX_JSON_MEMBER)
        for child in Index.from_bytes(data, what=f"{imp.name}: index {desc.digest}").manifests:
            _verify_tree(imp, child, depth + 1)
        return
    image = imp.store.load_image(desc)
    if not is_config(image.manifest.config.media_type):
        raise imp.fail(
            f"manifest {desc.digest}: unknown config media type"
            f" {image.manifest.config.media_type!r}"
        )
    for i, layer in enumerate(image.layers):
        if not is_layer(layer.descriptor.media_type):
            raise imp.fail(
                f"manifest {desc.digest}: layer {i} has unknown media type"
                f" {layer.descriptor.media_type!r}"
            )
        _, actual = _layer_facts(imp.store, layer.descriptor)
        if actual != layer.diff_id:
            raise DigestMismatchError(
                f"{imp.name}: layer {i} ({layer.descriptor.digest}) has diff_id {actual},"
                f" the config says {layer.diff_id}",
                expected=str(layer.diff_id),
                actual=str(actual),
            )


def _index_usable(imp: _Import) -> bool:
    """An OCI ``index.json`` whose manifests are all in the archive (keeps their digests)."""
    if "index.json" not in imp.members:
        return False
    raw = imp.member_bytes("index.json", "the archive")
    if "manifest.json" not in imp.members:
        return True  # an OCI archive: index.json is the only way in (errors are reported)
    try:
        index = Index.from_bytes(raw, what=f"{imp.name}: index.json")
    except StoreError:
        return False
    return bool(index.manifests) and all(
        f"blobs/sha256/{d.digest.hex}" in imp.members for d in index.manifests
    )


def load_archive(
    store: Store,
    stream: BinaryIO,
    *,
    name: str = "archive",
    tags: tuple[str, ...] = (),
    limits: TarLimits | None = None,
) -> tuple[ImageRecord, ...]:
    """Import a docker-archive or OCI archive (gzip/zstd/plain); returns the imported images.

    ``tags`` name the image (the archive must then hold exactly one).
    """
    limits = limits or TarLimits()
    refs = tuple(str(parse(t)) for t in tags)
    with store.lease():
        imp = _Import(store, name)
        imp.read(stream, limits)
        results: list[ImageRecord] = []
        if _index_usable(imp):
            entries = _oci_entries(imp)
            if refs and len(entries) != 1:
                raise imp.fail(f"cannot apply tags to {len(entries)} images")
            for desc, names in entries:
                chosen = refs or tuple(str(parse(n)) for n in names)
                if is_index(desc.media_type):
                    store.add_index_entry(desc, chosen)
                    results.append(store.resolve(str(desc.digest)))
                else:
                    results.append(store.write_image(store.load_image(desc), chosen))
        elif "manifest.json" in imp.members:
            found = _docker_images(imp)
            if refs and len(found) != 1:
                raise imp.fail(f"cannot apply tags to {len(found)} images")
            for manifest, raw_config, repo_tags in found:
                raw_manifest = manifest.to_bytes()
                layers: tuple[Layer, ...] = tuple(
                    StoreLayer(cas=store.cas, descriptor=d, diff_id=diff)
                    for d, diff in zip(
                        manifest.layers,
                        ImageConfig.from_bytes(raw_config).diff_ids,
                        strict=True,
                    )
                )
                image = ImageValue.from_parts(
                    raw_manifest=raw_manifest, raw_config=raw_config, layers=layers
                )
                results.append(store.write_image(image, refs or repo_tags))
        else:
            raise imp.fail("neither manifest.json nor index.json found: not an image archive")
    return tuple(results)


def import_rootfs(
    store: Store,
    stream: BinaryIO,
    *,
    tags: tuple[str, ...] = (),
    platform: Platform | None = None,
    created: int | None = None,
    source: str = "-",
    compression: Compression = Compression.GZIP,
    limits: TarLimits | None = None,
    config: ContainerConfig | None = None,
    comment: str | None = None,
) -> ImageRecord:
    """``docker import``: a plain rootfs tar (optionally compressed) becomes a one-layer image.

    One pass: the tar is validated header by header while its bytes are hashed (diff_id) and
    recompressed into the store. ``config`` is the run config (``--change``); ``comment``
    replaces the history comment ``Imported from <source>`` and is also the config's
    top-level ``comment``, as Docker records it.
    """
    limits = limits or TarLimits()
    with store.lease():
        writer = store.blob_writer(media_type=layer_media_type(compression))
        comp = compressor(compression)
        diff = Hasher()
        try:
            dec = DecompressingReader(stream, max_bytes=limits.max_bytes, name=source)
            tee = _Tee(dec, diff, comp, writer)
            tar = TarReader(io.BufferedReader(tee, buffer_size=1 << 16), limits=limits)
            while tar.next() is not None:
                pass
            while tee.read(1 << 20):
                pass
            writer.write(comp.flush())
            blob = writer.commit()
        except LayerError as exc:
            writer.abort()
            raise StoreError(f"{source}: not a valid rootfs tar: {exc.message}") from None
        except BaseException:
            writer.abort()
            raise
        layer = StoreLayer(cas=store.cas, descriptor=blob, diff_id=diff.digest())
        when = int(time.time()) if created is None else created
        base = empty_image(platform or Platform.host())
        message = comment if comment is not None else f"Imported from {source}"
        image = append_layer(
            base, layer, history=History(created=format_created(when), comment=message)
        )
        image_config = replace(image.config, created=format_created(when))
        if config is not None:
            image_config = replace(image_config, config=config)
        if comment is not None:
            extra = dict(image_config.extra)
            extra["comment"] = canonical_json(comment).decode()
            image_config = replace(image_config, extra=tuple(sorted(extra.items())))
        image = image_from(image.manifest, image_config, image.layers)
        return store.write_image(image, tags)


class _Tee(io.RawIOBase):
    """Reads decompressed tar bytes, hashing them and feeding a compressor into a blob."""

    def __init__(
        self, raw: io.RawIOBase, diff: Hasher, comp: Compressor, writer: BlobWriter
    ) -> None:
        super().__init__()
        self._raw = raw
        self._diff = diff
        self._comp = comp
        self._writer = writer

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view)) or b""
        self._diff.update(data)
        out = self._comp.compress(data)
        if out:
            self._writer.write(out)
        view[: len(data)] = data
        return len(data)


def save_archive(
    store: Store,
    refs: Sequence[str],
    out: BinaryIO,
    *,
    format: ArchiveFormat = ArchiveFormat.DOCKER,
    platform: Platform | None = None,
) -> None:
    """Write the named images from the store to ``out`` (``docker save`` / OCI archive)."""
    items: dict[Digest, ArchiveImage] = {}  # one entry per image, with all its requested tags
    with store.lease():
        for ref in refs:
            record = store.resolve(ref)
            image = store.load_image(record.descriptor, platform=platform)
            names = tuple(n for n in record.names if n == str(parse(ref))) or record.names
            key = Digest.of_bytes(image.raw_manifest)
            if key in items:
                known = items[key].tags
                names = (*known, *(n for n in names if n not in known))
            items[key] = ArchiveImage(image=image, tags=names)
        write_archive(out, list(items.values()), format=format)


__all__ = ["ArchiveFormat", "ArchiveImage", "import_rootfs", "load_archive", "save_archive"]
