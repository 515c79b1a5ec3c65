"""Write images as a docker-archive (``docker load``) or an OCI archive (tar of an OCI layout).

Both use the layout Docker 25+ ``docker save`` writes: blobs under ``blobs/sha256/<hex>``,
``oci-layout`` and ``index.json``; the docker flavour adds ``manifest.json`` (whose ``Config``
and ``Layers`` paths point at those blobs) and ``repositories``. ``docker load`` reads
``manifest.json`` and decompresses each layer itself, so gzip layers are written as stored.
Archive members are deterministic: sorted blob order, uid/gid 0, mtime 0.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from builder.digest import Digest
from builder.errors import StoreError
from builder.oci._json import canonical_json
from builder.oci.descriptor import Descriptor
from builder.oci.image import Image
from builder.oci.manifest import Index, descriptor_for
from builder.oci.tarformat import BLOCK, END_OF_ARCHIVE, EntryType, TarHeader, encode_header
from builder.reference import Reference, parse

REF_NAME = "org.opencontainers.image.ref.name"
CONTAINERD_NAME = "io.containerd.image.name"
_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


class ArchiveFormat(enum.Enum):
    DOCKER = "docker-archive"
    OCI = "oci-archive"


@dataclass(frozen=True, slots=True, kw_only=True)
class ArchiveImage:
    image: Image
    tags: tuple[str, ...] = ()


class TarWriter:
    """Minimal deterministic tar writer for archive members (not layers)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._dirs: set[str] = set()

    def _dir(self, path: str) -> None:
        parts = path.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self._dirs:
                self._dirs.add(d)
                self._out.write(encode_header(TarHeader(name=d, type=EntryType.DIR, mode=0o755)))

    def add_bytes(self, name: str, data: bytes) -> None:
        self._dir(name)
        self._out.write(encode_header(TarHeader(name=name, type=EntryType.FILE, size=len(data))))
        self._out.write(data)
        self._out.write(bytes(-len(data) % BLOCK))

    def add_stream(self, name: str, size: int, stream: BinaryIO) -> None:
        self._dir(name)
        self._out.write(encode_header(TarHeader(name=name, type=EntryType.FILE, size=size)))
        remaining = size
        while remaining:
            chunk = stream.read(min(remaining, 1 << 20))
            if not chunk:
                raise StoreError(f"archive member {name}: source ended {remaining} bytes early")
            self._out.write(chunk)
            remaining -= len(chunk)
        if stream.read(1):
            raise StoreError(f"archive member {name}: source is longer than {size} bytes")
        self._out.write(bytes(-size % BLOCK))

    def close(self) -> None:
        self._out.write(END_OF_ARCHIVE)
        self._out.flush()


def _blob_name(digest: Digest) -> str:
    return f"blobs/sha256/{digest.hex}"


def _refs(tags: tuple[str, ...]) -> tuple[Reference, ...]:
    refs = tuple(parse(t) for t in tags)
    for ref in refs:
        if ref.digest:
            raise StoreError(f"cannot name an archived image by digest: {ref}")
    return refs


def write_archive(out: BinaryIO, images: Sequence[ArchiveImage], *, format: ArchiveFormat) -> None:
    """Write ``images`` (each with its tags) to ``out`` as one archive."""
    tar = TarWriter(out)
    tar.add_bytes("oci-layout", _LAYOUT)
    written: set[Digest] = set()
    index_entries: list[Descriptor] = []
    docker_manifest: list[dict[str, object]] = []
    repositories: dict[str, dict[str, str]] = {}
    for item in images:
        image = item.image
        refs = _refs(item.tags)
        for layer in image.layers:
            desc = layer.descriptor
            if desc.digest not in written:
                written.add(desc.digest)
                with layer.open_compressed() as stream:
                    tar.add_stream(_blob_name(desc.digest), desc.size, stream)
        config_digest = image.manifest.config.digest
        if config_digest not in written:
            written.add(config_digest)
            tar.add_bytes(_blob_name(config_digest), image.raw_config)
        mdesc = descriptor_for(image.raw_manifest, image.manifest.media_type)
        if mdesc.digest not in written:
            written.add(mdesc.digest)
            tar.add_bytes(_blob_name(mdesc.digest), image.raw_manifest)
        if refs:
            for ref in refs:
                index_entries.append(
                    mdesc.with_annotations(((CONTAINERD_NAME, str(ref)), (REF_NAME, ref.tag)))
                )
        else:
            index_entries.append(mdesc)
        top = image.layers[-1].descriptor.digest.hex if image.layers else config_digest.hex
        for ref in refs:
            repositories.setdefault(ref.familiar_name, {})[ref.tag] = top
        docker_manifest.append(
            {
                "Config": _blob_name(config_digest),
                "RepoTags": [ref.familiar for ref in refs] or None,
                "Layers": [_blob_name(layer.descriptor.digest) for layer in image.layers],
            }
        )
    tar.add_bytes("index.json", Index(manifests=tuple(index_entries)).to_bytes())
    if format is ArchiveFormat.DOCKER:
        tar.add_bytes("manifest.json", canonical_json(docker_manifest))
        if repositories:
            tar.add_bytes("repositories", canonical_json(repositories))
    tar.close()
