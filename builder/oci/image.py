"""Read-only Image and Layer values (go-containerregistry's model) and ``EMPTY`` (scratch).

Sources (store, registry, archives, the build engine) produce them; sinks (store, registry push,
archive writers) consume them; ``mutate`` derives new ones. An ``Image`` keeps the exact bytes of
its manifest and config, so digests never depend on re-serialisation.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import BinaryIO, Protocol

from builder.digest import Digest
from builder.errors import StoreError
from builder.oci.config import ImageConfig
from builder.oci.descriptor import Descriptor, Platform
from builder.oci.manifest import Manifest, descriptor_for
from builder.oci.mediatype import MediaType, is_docker


class Layer(Protocol):
    """A layer blob: its descriptor, its diff_id and a way to stream it (verified)."""

    @property
    def descriptor(self) -> Descriptor: ...

    @property
    def diff_id(self) -> Digest: ...

    def open_compressed(self) -> BinaryIO: ...


class Image(Protocol):
    """A single-platform image: exact manifest and config bytes plus its layers."""

    @property
    def raw_manifest(self) -> bytes: ...

    @property
    def manifest(self) -> Manifest: ...

    @property
    def raw_config(self) -> bytes: ...

    @property
    def config(self) -> ImageConfig: ...

    @property
    def layers(self) -> tuple[Layer, ...]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BytesLayer:
    """A layer held in memory (small synthetic layers, tests)."""

    data: bytes
    diff_id: Digest
    media_type: str = MediaType.OCI_LAYER_GZIP

    @property
    def descriptor(self) -> Descriptor:
        return descriptor_for(self.data, self.media_type)

    def open_compressed(self) -> BinaryIO:
        return io.BytesIO(self.data)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageValue:
    """The one concrete ``Image``: validated so manifest, config and layers agree."""

    raw_manifest: bytes
    manifest: Manifest
    raw_config: bytes
    config: ImageConfig
    layers: tuple[Layer, ...]

    @classmethod
    def from_parts(
        cls, *, raw_manifest: bytes, raw_config: bytes, layers: tuple[Layer, ...]
    ) -> ImageValue:
        manifest = Manifest.from_bytes(raw_manifest)
        if Digest.of_bytes(raw_config) != manifest.config.digest:
            raise StoreError(
                f"image config does not match the manifest's config digest {manifest.config.digest}"
            )
        config = ImageConfig.from_bytes(raw_config)
        if len(layers) != len(manifest.layers):
            raise StoreError(
                f"image has {len(layers)} layers, its manifest lists {len(manifest.layers)}"
            )
        if len(config.diff_ids) != len(manifest.layers):
            raise StoreError(
                f"image config lists {len(config.diff_ids)} diff_ids for"
                f" {len(manifest.layers)} layers"
            )
        for i, (layer, desc, diff_id) in enumerate(
            zip(layers, manifest.layers, config.diff_ids, strict=True)
        ):
            if layer.descriptor.digest != desc.digest or layer.diff_id != diff_id:
                raise StoreError(f"image layer {i} ({desc.digest}) does not match its manifest")
        return cls(
            raw_manifest=raw_manifest,
            manifest=manifest,
            raw_config=raw_config,
            config=config,
            layers=layers,
        )

    @property
    def digest(self) -> Digest:
        """The manifest digest (what ``name@sha256:...`` refers to)."""
        return Digest.of_bytes(self.raw_manifest)

    @property
    def id(self) -> Digest:
        """The image ID as Docker shows it: the config digest."""
        return self.manifest.config.digest

    @property
    def platform(self) -> Platform:
        c = self.config
        return Platform(architecture=c.architecture, os=c.os, variant=c.variant)

    @property
    def is_docker(self) -> bool:
        return is_docker(self.manifest.media_type)


def image_from(manifest: Manifest, config: ImageConfig, layers: tuple[Layer, ...]) -> ImageValue:
    """Serialise ``config`` and ``manifest`` canonically (config descriptor refreshed)."""
    raw_config = config.to_bytes()
    config_type = (
        MediaType.DOCKER_CONFIG if is_docker(manifest.media_type) else MediaType.OCI_CONFIG
    )
    fresh = Manifest(
        config=descriptor_for(raw_config, config_type),
        layers=tuple(layer.descriptor for layer in layers),
        media_type=manifest.media_type,
        schema_version=manifest.schema_version,
        annotations=manifest.annotations,
        subject=manifest.subject,
        artifact_type=manifest.artifact_type,
        extra=manifest.extra,
    )
    return ImageValue.from_parts(
        raw_manifest=fresh.to_bytes(), raw_config=raw_config, layers=layers
    )


def empty_image(platform: Platform | None = None) -> ImageValue:
    """``FROM scratch``: no layers, an empty run config."""
    p = platform or Platform(architecture="amd64", os="linux")
    config = ImageConfig(architecture=p.architecture, os=p.os, variant=p.variant)
    placeholder = descriptor_for(b"{}", MediaType.OCI_CONFIG)
    return image_from(Manifest(config=placeholder), config, ())


EMPTY = empty_image()
