"""Interoperability with skopeo (containers/image): what pybuild pushes skopeo pulls with the
same digests, and what skopeo pushes pybuild pulls with the same digests."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from regserver import SKOPEO_BIN, RegistryServer, ToolMissingError, make_image, require_tool

from builder.digest import Digest
from builder.oci import mutate
from builder.oci.descriptor import Descriptor, Platform
from builder.oci.manifest import Index
from builder.oci.mediatype import MediaType
from builder.registry.client import RegistryClient
from builder.registry.remote import pull_image, push_image
from builder.store import Store
from builder.store.fsck import fsck

pytestmark = pytest.mark.integration

MakeClient = Callable[..., RegistryClient]


@pytest.fixture(scope="module")
def skopeo() -> str:
    try:
        return require_tool(SKOPEO_BIN, "skopeo")
    except ToolMissingError as exc:
        pytest.fail(str(exc), pytrace=False)


def _skopeo(skopeo: str, *args: str) -> str:
    proc = subprocess.run(
        [skopeo, "--insecure-policy", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _layout_manifest(layout: Path, name: str) -> Digest:
    index = json.loads((layout / "index.json").read_bytes())
    for entry in index["manifests"]:
        if entry.get("annotations", {}).get("org.opencontainers.image.ref.name") == name:
            return Digest.parse(entry["digest"])
    raise AssertionError(f"{name} not in {layout}")


def test_skopeo_pulls_what_pybuild_pushed(
    skopeo: str, registry: RegistryServer, store: Store, tmp_path: Path, make_client: MakeClient
) -> None:
    ref = f"{registry.host}/interop/from-pybuild:v1"
    image = make_image(store, (ref,), layer_sizes=(1500, 120_000), seed=40, docker=True)
    pushed = push_image(store, ref, client=make_client())
    raw = _skopeo(skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{ref}")
    assert Digest.of_bytes(raw.encode()) == pushed.digest == image.digest
    assert json.loads(raw)["mediaType"] == MediaType.DOCKER_MANIFEST

    layout = tmp_path / "skopeo-layout"
    _skopeo(
        skopeo,
        "copy",
        "--src-tls-verify=false",
        "--preserve-digests",
        f"docker://{ref}",
        f"oci:{layout}:copied",
    )
    assert _layout_manifest(layout, "copied") == image.digest
    for desc in (image.manifest.config, *(layer.descriptor for layer in image.layers)):
        blob = layout / "blobs" / "sha256" / desc.digest.hex
        assert Digest.of_bytes(blob.read_bytes()) == desc.digest


def test_pybuild_pulls_what_skopeo_pushed(
    skopeo: str,
    registry: RegistryServer,
    store: Store,
    other_store: Store,
    make_client: MakeClient,
) -> None:
    name = "docker.io/library/interop-source:v1"
    # (containers/image reads only OCI-typed entries of an OCI layout's index.json)
    image = make_image(store, (name,), layer_sizes=(2500, 90_000), seed=41)
    ref = f"{registry.host}/interop/from-skopeo:v2"
    _skopeo(
        skopeo,
        "copy",
        "--dest-tls-verify=false",
        "--preserve-digests",
        f"oci:{store.root}:{name}",
        f"docker://{ref}",
    )
    result = pull_image(other_store, ref, client=make_client())
    assert result.digest == image.digest
    assert result.record.digest == image.digest
    loaded = other_store.load_image(result.record.descriptor)
    assert loaded.raw_config == image.raw_config
    assert [layer.descriptor for layer in loaded.layers] == [
        layer.descriptor for layer in image.layers
    ]
    assert fsck(other_store).ok


def test_multi_platform_index_both_ways(
    *,
    skopeo: str,
    registry: RegistryServer,
    store: Store,
    other_store: Store,
    tmp_path: Path,
    make_client: MakeClient,
) -> None:
    entries = []
    for seed, platform in (
        (42, Platform(architecture="amd64")),
        (43, Platform(architecture="arm64")),
    ):
        image = mutate.with_platform(make_image(store, (), seed=seed), platform)
        store.write_image(image)
        entries.append(
            Descriptor(
                media_type=MediaType.OCI_MANIFEST,
                digest=image.digest,
                size=len(image.raw_manifest),
                platform=platform,
            )
        )
    data = Index(manifests=tuple(entries)).to_bytes()
    name = f"{registry.host}/interop/index:v1"
    store.add_index_entry(store.put_bytes(data, media_type=MediaType.OCI_INDEX), (name,))

    pushed = push_image(store, name, client=make_client())
    assert pushed.digest == Digest.of_bytes(data)
    raw = _skopeo(skopeo, "inspect", "--raw", "--tls-verify=false", f"docker://{name}")
    assert raw.encode() == data

    copied = f"{registry.host}/interop/index-copy:v1"
    _skopeo(
        skopeo,
        "copy",
        "--all",
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--preserve-digests",
        f"docker://{name}",
        f"docker://{copied}",
    )
    result = pull_image(
        other_store, copied, client=make_client(), platform=Platform.parse("linux/arm64")
    )
    assert result.digest == pushed.digest
    assert result.record.digest == entries[1].digest
