"""The cache manifest format: encode -> decode round trip, BuildKit's field names, both
manifest forms, and refusal of what is not a cache manifest."""

from __future__ import annotations

import json

import pytest

from builder.digest import Digest
from builder.engine.remotecache import parse_cache_spec
from builder.errors import BuildError, StoreError
from builder.oci.cacheconfig import (
    CACHE_CONFIG_MEDIA_TYPE,
    CachedLayer,
    config_descriptor,
    decode,
    encode,
)
from builder.oci.descriptor import Descriptor

GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


def _layer(n: int, blob: int | None = None) -> CachedLayer:
    data = f"blob {blob if blob is not None else n}".encode()
    return CachedLayer(
        key=Digest.of_bytes(f"key {n}".encode()),
        blob=Descriptor(media_type=GZ, digest=Digest.of_bytes(data), size=len(data)),
        diff_id=Digest.of_bytes(f"diff {blob if blob is not None else n}".encode()),
        created=f"2026-01-0{n + 1}T00:00:00Z",
    )


def test_round_trip_lists_each_blob_once() -> None:
    layers = (_layer(0), _layer(1), _layer(2, blob=0))  # two keys made the same layer
    config, manifest = encode(layers)
    index = json.loads(manifest)
    assert index["mediaType"] == "application/vnd.oci.image.index.v1+json"
    assert [m["mediaType"] for m in index["manifests"]] == [GZ, GZ, CACHE_CONFIG_MEDIA_TYPE]
    first = index["manifests"][0]["annotations"]
    assert first["containerd.io/uncompressed"] == str(layers[0].diff_id)
    raw = json.loads(config)
    assert [x["parent"] for x in raw["layers"]] == [-1, -1]
    assert [r["layers"][0]["layer"] for r in raw["records"]] == [0, 1, 0]
    desc = config_descriptor(manifest, "m")
    assert desc.digest == Digest.of_bytes(config)
    decoded = decode(config, "c")
    assert decoded[layers[2].key].blob == layers[0].blob
    assert decoded[layers[1].key] == layers[1]


def test_image_manifest_form_is_read() -> None:
    config, _ = encode((_layer(0),))
    desc: dict[str, object] = {
        "mediaType": CACHE_CONFIG_MEDIA_TYPE,
        "digest": str(Digest.of_bytes(config)),
        "size": len(config),
    }
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": desc,
            "layers": [],
        }
    ).encode()
    assert config_descriptor(manifest, "m").digest == Digest.of_bytes(config)


def test_chained_buildkit_records_are_skipped() -> None:
    config, _ = encode((_layer(0), _layer(1)))
    raw = json.loads(config)
    raw["layers"][1]["parent"] = 0
    assert set(decode(json.dumps(raw).encode(), "c")) == {_layer(0).key}


def test_an_image_index_is_not_a_cache_manifest() -> None:
    index: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [],
    }
    with pytest.raises(StoreError, match="not a cache manifest"):
        config_descriptor(json.dumps(index).encode(), "cache r/x")


@pytest.mark.parametrize(
    ("text", "export", "expected"),
    [
        ("r.example/app:cache", False, ("registry", "r.example/app:cache", "min", "gzip")),
        (
            "type=registry,ref=r.example/a:c,mode=max,compression=zstd",
            True,
            ("registry", "r.example/a:c", "max", "zstd"),
        ),
        ("type=local,dest=/tmp/c", True, ("local", "/tmp/c", "min", "gzip")),
        ("type=local,src=/tmp/c", False, ("local", "/tmp/c", "min", "gzip")),
    ],
)
def test_cache_specs(text: str, export: bool, expected: tuple[str, str, str, str]) -> None:
    spec = parse_cache_spec(text, export=export)
    assert (spec.kind, spec.label, spec.mode, spec.compression) == expected


@pytest.mark.parametrize(
    ("text", "export", "message"),
    [
        ("type=gha,url=x", True, "unsupported cache type 'gha'"),
        ("type=local,src=/x", True, "unknown attribute 'src'"),
        ("type=registry,ref=r/x,compression=lz4", True, "invalid compression 'lz4'"),
        ("type=registry", False, "ref= is required"),
        ("type=registry,ref=r/X", False, "must be lowercase"),
        ("type=registry,ref", False, "expected KEY=VALUE"),
        ("type=local,dest=/x,mounts=yes", True, "invalid mounts 'yes'"),
        ("type=local,src=/x,mounts=true", False, "unknown attribute 'mounts'"),
    ],
)
def test_bad_cache_specs(text: str, export: bool, message: str) -> None:
    with pytest.raises(BuildError, match=message):
        parse_cache_spec(text, export=export)


def test_mounts_flag() -> None:
    assert parse_cache_spec("type=local,dest=/c,mounts=true", export=True).mounts
    assert not parse_cache_spec("type=local,dest=/c", export=True).mounts
