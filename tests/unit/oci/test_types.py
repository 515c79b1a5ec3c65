"""OCI/Docker documents: parsing, canonical JSON, unknown-field preservation, validation."""

from __future__ import annotations

import json

import pytest

from builder.digest import Digest
from builder.errors import StoreError
from builder.oci.types import (
    Compression,
    ContainerConfig,
    Descriptor,
    Healthcheck,
    History,
    ImageConfig,
    Index,
    Manifest,
    MediaType,
    Platform,
    canonical_json,
    format_created,
    is_index,
    is_layer,
    is_manifest,
    layer_compression,
    layer_media_type,
)

D1 = "sha256:" + "a" * 64
D2 = "sha256:" + "b" * 64


def test_canonical_json_is_sorted_and_compact() -> None:
    assert (
        canonical_json({"b": 1, "a": [1, {"d": 2, "c": "é"}]})
        == '{"a":[1,{"c":"é","d":2}],"b":1}'.encode()
    )


def test_media_type_helpers() -> None:
    assert is_manifest(MediaType.DOCKER_MANIFEST)
    assert is_index(MediaType.DOCKER_MANIFEST_LIST)
    assert is_layer(MediaType.OCI_LAYER_ZSTD)
    assert not is_layer(MediaType.OCI_CONFIG)
    assert layer_compression(MediaType.DOCKER_LAYER_GZIP) is Compression.GZIP
    assert layer_compression("text/plain") is None
    assert layer_media_type(Compression.ZSTD, docker=True) == MediaType.OCI_LAYER_ZSTD
    assert layer_media_type(Compression.NONE, docker=True) == MediaType.DOCKER_LAYER


def test_manifest_round_trip_keeps_unknown_fields() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_MANIFEST,
        "config": {"mediaType": MediaType.OCI_CONFIG, "digest": D1, "size": 10, "x-extra": [1]},
        "layers": [
            {
                "mediaType": MediaType.OCI_LAYER_GZIP,
                "digest": D2,
                "size": 20,
                "annotations": {"k": "v"},
                "urls": ["https://example.com/l"],
            }
        ],
        "annotations": {"org.opencontainers.image.created": "2024-01-01T00:00:00Z"},
        "futureField": {"nested": True},
    }
    m = Manifest.from_bytes(json.dumps(doc).encode())
    assert m.config.digest == Digest.parse(D1)
    assert m.layers[0].annotation("k") == "v"
    assert json.loads(m.to_bytes()) == doc
    assert m.to_bytes() == canonical_json(doc)


def test_manifest_without_media_type_defaults_to_oci() -> None:
    doc = {"schemaVersion": 2, "config": {"mediaType": "x", "digest": D1, "size": 1}}
    assert Manifest.from_bytes(json.dumps(doc).encode()).media_type == MediaType.OCI_MANIFEST


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"schemaVersion": 2, "config": {}, "manifests": []}, "'manifests' field"),
        ({"schemaVersion": 1, "config": {}}, "unsupported schemaVersion 1"),
        ({"schemaVersion": 2}, "missing 'config'"),
        (
            {
                "schemaVersion": 2,
                "config": {"mediaType": "x", "digest": "sha256:../../x", "size": 1},
            },
            "invalid digest",
        ),
        (
            {"schemaVersion": 2, "config": {"mediaType": "x", "digest": D1.upper(), "size": 1}},
            "invalid digest",
        ),
        (
            {"schemaVersion": 2, "config": {"mediaType": "x", "digest": D1, "size": -1}},
            "negative size",
        ),
        (
            {"schemaVersion": 2, "config": {"mediaType": "x", "digest": D1, "size": 1.5}},
            "must be an integer",
        ),
        (
            {"schemaVersion": 2, "mediaType": MediaType.OCI_INDEX, "config": {}},
            "unexpected mediaType",
        ),
    ],
)
def test_bad_manifests_are_refused(doc: dict[str, object], message: str) -> None:
    with pytest.raises(StoreError, match=message):
        Manifest.from_bytes(json.dumps(doc).encode())


@pytest.mark.parametrize("field", ["config", "layers"])
def test_ambiguous_index_is_refused(field: str) -> None:
    doc = {"schemaVersion": 2, "manifests": [], field: {}}
    with pytest.raises(StoreError, match=f"ambiguous index: has a '{field}' field"):
        Index.from_bytes(json.dumps(doc).encode())


def test_manifest_over_size_cap_is_refused() -> None:
    with pytest.raises(StoreError, match="exceeds the 4194304-byte limit"):
        Manifest.from_bytes(b" " * (5 * 1024 * 1024))


def test_invalid_json_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="invalid JSON"):
        Index.from_bytes(b"{nope")
    with pytest.raises(StoreError, match="expected a JSON object"):
        Index.from_bytes(b"[]")


def test_index_with_platforms() -> None:
    doc = {
        "schemaVersion": 2,
        "mediaType": MediaType.OCI_INDEX,
        "manifests": [
            {
                "mediaType": MediaType.OCI_MANIFEST,
                "digest": D1,
                "size": 5,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            }
        ],
    }
    index = Index.from_bytes(json.dumps(doc).encode())
    platform = index.manifests[0].platform
    assert platform is not None
    assert str(platform) == "linux/arm64/v8"
    assert Platform.parse("linux/arm64").matches(platform)
    assert not Platform.parse("linux/amd64").matches(platform)
    assert json.loads(index.to_bytes()) == doc


def test_platform_parse_normalises() -> None:
    assert Platform.parse("linux/x86_64") == Platform(architecture="amd64", os="linux")
    assert Platform.parse("linux/arm64/v8") == Platform(architecture="arm64", os="linux")
    assert str(Platform.parse("linux/arm/v7")) == "linux/arm/v7"
    with pytest.raises(StoreError, match="invalid platform"):
        Platform.parse("linux")


def test_config_docker_casing_and_round_trip() -> None:
    doc = {
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-05-01T10:00:00.123456789Z",
        "author": "me",
        "container": "abc",  # docker-only top-level field: kept
        "config": {
            "User": "app",
            "Env": ["PATH=/bin", "A=1"],
            "Entrypoint": ["/init"],
            "Cmd": ["sh"],
            "WorkingDir": "/w",
            "Labels": {"b": "2", "a": "1"},
            "ExposedPorts": {"80/tcp": {}},
            "Volumes": {"/data": {}},
            "StopSignal": "SIGTERM",
            "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30_000_000_000, "Retries": 3},
            "OnBuild": ["RUN x"],
            "Shell": ["/bin/bash", "-c"],
            "ArgsEscaped": True,
            "Hostname": "kept",
        },
        "rootfs": {"type": "layers", "diff_ids": [D1, D2]},
        "history": [
            {"created_by": "ADD x /", "created": "2024-05-01T10:00:00Z"},
            {"created_by": "ENV A=1", "empty_layer": True, "weird": 1},
        ],
    }
    cfg = ImageConfig.from_bytes(json.dumps(doc).encode())
    assert cfg.config.env_value("A") == "1"
    assert cfg.config.labels == (("a", "1"), ("b", "2"))
    assert cfg.config.healthcheck == Healthcheck(
        test=("CMD", "true"), interval=30_000_000_000, retries=3
    )
    assert cfg.history[1].empty_layer
    assert cfg.diff_ids == (Digest.parse(D1), Digest.parse(D2))
    assert json.loads(cfg.to_bytes()) == doc


def test_config_omits_empty_fields() -> None:
    cfg = ImageConfig(architecture="arm64", os="linux")
    assert cfg.to_bytes() == (
        b'{"architecture":"arm64","config":{},"os":"linux","rootfs":{"diff_ids":[],"type":"layers"}}'
    )


def test_config_bad_diff_id_is_refused() -> None:
    doc = {"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": ["x"]}}
    with pytest.raises(StoreError, match="diff_id 0"):
        ImageConfig.from_bytes(json.dumps(doc).encode())


def test_with_env_replaces_in_place() -> None:
    c = ContainerConfig(env=("A=1", "B=2"))
    assert c.with_env("A", "3").env == ("A=3", "B=2")
    assert c.with_env("C", "4").env == ("A=1", "B=2", "C=4")


def test_format_created() -> None:
    assert format_created(0) == "1970-01-01T00:00:00Z"
    assert format_created(1_700_000_000) == "2023-11-14T22:13:20Z"


def test_descriptor_rejects_negative_size() -> None:
    with pytest.raises(StoreError, match="negative size"):
        Descriptor(media_type="x", digest=Digest.parse(D1), size=-1)


def test_history_defaults_serialise_empty() -> None:
    assert History().to_json() == {}


def test_index_for_platform_prefers_the_same_variant_then_a_platformed_entry() -> None:
    def entry(n: int, platform: Platform | None) -> Descriptor:
        return Descriptor(
            media_type=MediaType.OCI_MANIFEST,
            digest=Digest.of_bytes(bytes([n])),
            size=n,
            platform=platform,
        )

    bare = entry(1, None)
    v7 = entry(2, Platform(os="linux", architecture="arm", variant="v7"))
    v6 = entry(3, Platform(os="linux", architecture="arm", variant="v6"))
    amd = entry(4, Platform(os="linux", architecture="amd64"))
    index = Index(manifests=(bare, v6, v7, amd))
    assert index.for_platform(Platform(os="linux", architecture="arm", variant="v7")) == v7
    assert index.for_platform(Platform(os="linux", architecture="amd64")) == amd
    assert Index(manifests=(bare,)).for_platform(Platform(os="linux", architecture="s390x")) == bare
    assert Index(manifests=(amd,)).for_platform(Platform(os="linux", architecture="s390x")) is None
