"""Image values and pure mutations."""

from __future__ import annotations

import io
import json
from dataclasses import replace

import pytest

from builder.digest import Digest
from builder.errors import StoreError
from builder.oci import mutate
from builder.oci.image import EMPTY, BytesLayer, ImageValue, empty_image
from builder.oci.layer import LayerEntry, write_layer
from builder.oci.types import (
    Compression,
    ContainerConfig,
    History,
    MediaType,
    Platform,
    layer_media_type,
)


def _layer(name: str, compression: Compression = Compression.GZIP) -> BytesLayer:
    out = io.BytesIO()
    result = write_layer([LayerEntry(path=name, data=name.encode())], out, compression=compression)
    return BytesLayer(
        data=out.getvalue(), diff_id=result.diff_id, media_type=layer_media_type(compression)
    )


def test_empty_image_is_scratch() -> None:
    assert EMPTY.layers == ()
    assert EMPTY.manifest.layers == ()
    assert EMPTY.config.diff_ids == ()
    assert EMPTY.manifest.media_type == MediaType.OCI_MANIFEST
    assert EMPTY.manifest.config.digest == Digest.of_bytes(EMPTY.raw_config)
    arm = empty_image(Platform.parse("linux/arm64"))
    assert arm.config.architecture == "arm64"
    assert arm.digest != EMPTY.digest


def test_append_layer_updates_manifest_config_history() -> None:
    a, b = _layer("a"), _layer("b")
    img = mutate.append_layer(EMPTY, a, history=History(created_by="COPY a /"))
    img = mutate.append_layer(img, b)
    assert [d.digest for d in img.manifest.layers] == [a.descriptor.digest, b.descriptor.digest]
    assert img.config.diff_ids == (a.diff_id, b.diff_id)
    assert [h.created_by for h in img.config.history] == ["COPY a /", ""]
    assert EMPTY.layers == ()  # inputs are untouched
    doc = json.loads(img.raw_manifest)
    assert doc["config"]["digest"] == str(Digest.of_bytes(img.raw_config))


def test_with_config_and_history_are_pure() -> None:
    img = mutate.append_layer(EMPTY, _layer("a"))
    cfg = ContainerConfig(env=("A=1",), cmd=("sh",))
    img2 = mutate.with_history(mutate.with_config(img, cfg), History(created_by="ENV A=1"))
    assert img2.config.config == cfg
    assert img2.config.history[-1].empty_layer
    assert img.config.config == ContainerConfig()
    assert img2.digest != img.digest
    assert json.loads(img2.raw_config)["config"] == {"Cmd": ["sh"], "Env": ["A=1"]}


def test_docker_family_layers_are_retyped() -> None:
    docker_base = mutate.convert(EMPTY, docker=True)
    assert docker_base.manifest.media_type == MediaType.DOCKER_MANIFEST
    assert docker_base.manifest.config.media_type == MediaType.DOCKER_CONFIG
    img = mutate.append_layer(docker_base, _layer("a"))
    assert img.manifest.layers[0].media_type == MediaType.DOCKER_LAYER_GZIP
    zimg = mutate.append_layer(img, _layer("z", Compression.ZSTD))
    assert zimg.manifest.media_type == MediaType.OCI_MANIFEST
    assert [d.media_type for d in zimg.manifest.layers] == [
        MediaType.OCI_LAYER_GZIP,
        MediaType.OCI_LAYER_ZSTD,
    ]


def test_from_parts_checks_consistency() -> None:
    img = mutate.append_layer(EMPTY, _layer("a"))
    with pytest.raises(StoreError, match="does not match the manifest's config digest"):
        ImageValue.from_parts(
            raw_manifest=img.raw_manifest, raw_config=img.raw_config + b" ", layers=img.layers
        )
    with pytest.raises(StoreError, match="image has 0 layers"):
        ImageValue.from_parts(raw_manifest=img.raw_manifest, raw_config=img.raw_config, layers=())
    with pytest.raises(StoreError, match="does not match its manifest"):
        ImageValue.from_parts(
            raw_manifest=img.raw_manifest, raw_config=img.raw_config, layers=(_layer("b"),)
        )


def test_with_image_config_rejects_diff_id_drift() -> None:
    img = mutate.append_layer(EMPTY, _layer("a"))
    with pytest.raises(StoreError, match="diff_ids"):
        mutate.with_image_config(img, replace(img.config, diff_ids=()))


def test_created_platform_annotations_canonical() -> None:
    img = mutate.with_created(EMPTY, "2024-01-01T00:00:00Z", author="me")
    img = mutate.with_platform(img, Platform.parse("linux/arm/v7"))
    img = mutate.with_annotations(img, (("b", "2"), ("a", "1")))
    assert img.config.created == "2024-01-01T00:00:00Z"
    assert img.platform == Platform(architecture="arm", os="linux", variant="v7")
    assert img.manifest.annotations == (("a", "1"), ("b", "2"))
    assert mutate.canonical(img).digest == img.digest
    assert img.id == img.manifest.config.digest
