"""Pure data of the OCI image model, re-exported from one place.

``plan`` may import this module (data only: no I/O anywhere below it).
"""

from __future__ import annotations

from builder.oci._json import canonical_json
from builder.oci.config import (
    ContainerConfig,
    Healthcheck,
    History,
    ImageConfig,
    format_created,
)
from builder.oci.descriptor import Descriptor, Platform
from builder.oci.manifest import Index, Manifest, descriptor_for
from builder.oci.mediatype import (
    Compression,
    MediaType,
    is_config,
    is_docker,
    is_index,
    is_layer,
    is_manifest,
    layer_compression,
    layer_media_type,
)

__all__ = [
    "Compression",
    "ContainerConfig",
    "Descriptor",
    "Healthcheck",
    "History",
    "ImageConfig",
    "Index",
    "Manifest",
    "MediaType",
    "Platform",
    "canonical_json",
    "descriptor_for",
    "format_created",
    "is_config",
    "is_docker",
    "is_index",
    "is_layer",
    "is_manifest",
    "layer_compression",
    "layer_media_type",
]
