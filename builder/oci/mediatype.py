"""Media types of OCI and Docker schema 2 documents and layers, and layer compression."""

from __future__ import annotations

import enum
from typing import Final


class MediaType:
    """Media type strings (a namespace, not an enum: remote documents may carry others)."""

    OCI_MANIFEST: Final = "application/vnd.oci.image.manifest.v1+json"
    OCI_INDEX: Final = "application/vnd.oci.image.index.v1+json"
    OCI_CONFIG: Final = "application/vnd.oci.image.config.v1+json"
    OCI_LAYER: Final = "application/vnd.oci.image.layer.v1.tar"
    OCI_LAYER_GZIP: Final = "application/vnd.oci.image.layer.v1.tar+gzip"
    OCI_LAYER_ZSTD: Final = "application/vnd.oci.image.layer.v1.tar+zstd"
    OCI_LAYER_NONDIST: Final = "application/vnd.oci.image.layer.nondistributable.v1.tar"
    OCI_LAYER_NONDIST_GZIP: Final = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
    OCI_EMPTY: Final = "application/vnd.oci.empty.v1+json"
    DOCKER_MANIFEST: Final = "application/vnd.docker.distribution.manifest.v2+json"
    DOCKER_MANIFEST_LIST: Final = "application/vnd.docker.distribution.manifest.list.v2+json"
    DOCKER_CONFIG: Final = "application/vnd.docker.container.image.v1+json"
    DOCKER_LAYER: Final = "application/vnd.docker.image.rootfs.diff.tar"
    DOCKER_LAYER_GZIP: Final = "application/vnd.docker.image.rootfs.diff.tar.gzip"
    DOCKER_FOREIGN_LAYER_GZIP: Final = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"


class Compression(enum.Enum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


_MANIFESTS: Final = frozenset({MediaType.OCI_MANIFEST, MediaType.DOCKER_MANIFEST})
_INDEXES: Final = frozenset({MediaType.OCI_INDEX, MediaType.DOCKER_MANIFEST_LIST})
_CONFIGS: Final = frozenset({MediaType.OCI_CONFIG, MediaType.DOCKER_CONFIG})
_LAYERS: Final = {
    MediaType.OCI_LAYER: Compression.NONE,
    MediaType.OCI_LAYER_GZIP: Compression.GZIP,
    MediaType.OCI_LAYER_ZSTD: Compression.ZSTD,
    MediaType.OCI_LAYER_NONDIST: Compression.NONE,
    MediaType.OCI_LAYER_NONDIST_GZIP: Compression.GZIP,
    MediaType.DOCKER_LAYER: Compression.NONE,
    MediaType.DOCKER_LAYER_GZIP: Compression.GZIP,
    MediaType.DOCKER_FOREIGN_LAYER_GZIP: Compression.GZIP,
}


def is_manifest(media_type: str) -> bool:
    return media_type in _MANIFESTS


def is_index(media_type: str) -> bool:
    return media_type in _INDEXES


def is_config(media_type: str) -> bool:
    return media_type in _CONFIGS


def is_layer(media_type: str) -> bool:
    return media_type in _LAYERS


def is_docker(media_type: str) -> bool:
    return media_type.startswith("application/vnd.docker.")


def layer_compression(media_type: str) -> Compression | None:
    """The compression a layer media type implies, or None when it is not a known layer type."""
    return _LAYERS.get(media_type)


def layer_media_type(compression: Compression, *, docker: bool = False) -> str:
    """The layer media type for ``compression`` in the OCI or Docker schema 2 family.

    Docker schema 2 has no zstd layer type, so zstd is always the OCI type.
    """
    match compression:
        case Compression.NONE:
            return MediaType.DOCKER_LAYER if docker else MediaType.OCI_LAYER
        case Compression.GZIP:
            return MediaType.DOCKER_LAYER_GZIP if docker else MediaType.OCI_LAYER_GZIP
        case Compression.ZSTD:
            return MediaType.OCI_LAYER_ZSTD
