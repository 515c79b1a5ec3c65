"""Pure image transforms: each takes an Image and returns a new ``ImageValue``.

Layer descriptors follow the manifest's family: a Docker schema 2 manifest gets Docker layer
media types (same bytes), and a zstd layer, which Docker schema 2 cannot describe, turns the
image into an OCI one.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import BinaryIO

from builder.digest import Digest
from builder.oci.config import ContainerConfig, History, ImageConfig
from builder.oci.descriptor import Descriptor, Platform
from builder.oci.image import Image, ImageValue, Layer, image_from
from builder.oci.manifest import Manifest
from builder.oci.mediatype import (
    Compression,
    MediaType,
    is_docker,
    layer_compression,
    layer_media_type,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _RetypedLayer:
    """The same blob under another (equivalent) media type."""

    inner: Layer
    media_type: str

    @property
    def descriptor(self) -> Descriptor:
        return replace(self.inner.descriptor, media_type=self.media_type)

    @property
    def diff_id(self) -> Digest:
        return self.inner.diff_id

    def open_compressed(self) -> BinaryIO:
        return self.inner.open_compressed()


def _retype(layer: Layer, *, docker: bool) -> Layer:
    compression = layer_compression(layer.descriptor.media_type)
    if compression is None:
        return layer
    want = layer_media_type(compression, docker=docker)
    if want == layer.descriptor.media_type:
        return layer
    return _RetypedLayer(inner=layer, media_type=want)


def convert(image: Image, *, docker: bool) -> ImageValue:
    """Re-express ``image`` as a Docker schema 2 (``docker=True``) or OCI image."""
    media_type = MediaType.DOCKER_MANIFEST if docker else MediaType.OCI_MANIFEST
    layers = tuple(_retype(layer, docker=docker) for layer in image.layers)
    manifest = replace(image.manifest, media_type=media_type)
    return image_from(manifest, image.config, layers)


def append_layers(image: Image, *layers_and_history: tuple[Layer, History | None]) -> ImageValue:
    """Add layers on top; each may bring a history entry (default: an empty one)."""
    docker = is_docker(image.manifest.media_type)
    if docker and any(
        layer_compression(layer.descriptor.media_type) is Compression.ZSTD
        for layer, _ in layers_and_history
    ):
        docker = False
    base = (
        convert(image, docker=docker) if docker != is_docker(image.manifest.media_type) else image
    )
    layers = list(base.layers)
    diff_ids = list(base.config.diff_ids)
    history = list(base.config.history)
    for layer, entry in layers_and_history:
        layers.append(_retype(layer, docker=docker))
        diff_ids.append(layer.diff_id)
        history.append(entry if entry is not None else History())
    config = replace(base.config, diff_ids=tuple(diff_ids), history=tuple(history))
    return image_from(base.manifest, config, tuple(layers))


def append_layer(image: Image, layer: Layer, *, history: History | None = None) -> ImageValue:
    return append_layers(image, (layer, history))


def with_config(image: Image, config: ContainerConfig) -> ImageValue:
    """Replace the run config (Env, Cmd, ...)."""
    return image_from(image.manifest, replace(image.config, config=config), image.layers)


def with_image_config(image: Image, config: ImageConfig) -> ImageValue:
    """Replace the whole config document; its diff_ids must still match the layers."""
    return image_from(image.manifest, config, image.layers)


def with_history(image: Image, entry: History) -> ImageValue:
    """Record a step that made no layer (ENV, CMD, ...): ``empty_layer`` is forced on."""
    entry = replace(entry, empty_layer=True)
    config = replace(image.config, history=(*image.config.history, entry))
    return image_from(image.manifest, config, image.layers)


def with_created(image: Image, created: str | None, *, author: str | None = None) -> ImageValue:
    config = replace(image.config, created=created)
    if author is not None:
        config = replace(config, author=author)
    return image_from(image.manifest, config, image.layers)


def with_platform(image: Image, platform: Platform) -> ImageValue:
    config = replace(
        image.config,
        architecture=platform.architecture,
        os=platform.os,
        variant=platform.variant,
    )
    return image_from(image.manifest, config, image.layers)


def with_annotations(image: Image, annotations: tuple[tuple[str, str], ...]) -> ImageValue:
    manifest: Manifest = replace(
        image.manifest, annotations=tuple(sorted(dict(annotations).items()))
    )
    return image_from(manifest, image.config, image.layers)


def canonical(image: Image) -> ImageValue:
    """Re-serialise manifest and config canonically (sorted keys, compact)."""
    return image_from(image.manifest, image.config, image.layers)
