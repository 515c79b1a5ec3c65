"""Pull and push against a real docker-registry: round trips, indexes and platforms, mounts,
chunked uploads, mirrors, and the CLI's output and errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from regserver import FaultProxy, RegistryServer, make_image

from builder import cli
from builder.digest import Digest
from builder.errors import ManifestNotFoundError, RegistryError
from builder.oci import mutate
from builder.oci.descriptor import Descriptor, Platform
from builder.oci.manifest import Index
from builder.oci.mediatype import MediaType
from builder.registry.client import RegistryClient
from builder.registry.config import Mirror, RegistrySettings
from builder.registry.progress import LayerProgress, Status
from builder.registry.remote import pull, pull_image, push_image
from builder.store import Store
from builder.store.fsck import fsck

pytestmark = pytest.mark.integration

MakeClient = Callable[..., RegistryClient]


def test_push_then_pull_round_trip_keeps_digests(
    registry: RegistryServer, store: Store, other_store: Store, make_client: MakeClient
) -> None:
    ref = f"{registry.host}/roundtrip/app:v1"
    image = make_image(store, (ref,), layer_sizes=(2000, 300_000, 40_000), seed=1)
    client = make_client()
    events: list[LayerProgress] = []
    pushed = push_image(store, ref, client=client, progress=events.append)
    assert pushed.digest == image.digest
    assert pushed.size == len(image.raw_manifest)
    assert {e.digest for e in events if e.status is Status.PUSHED} == {
        layer.descriptor.digest for layer in image.layers
    }
    # the registry holds exactly our bytes
    for layer in image.layers:
        assert Digest.of_bytes(registry.blob_path(layer.descriptor.digest).read_bytes()) == (
            layer.descriptor.digest
        )

    pulled = pull_image(other_store, ref, client=client)
    assert not pulled.up_to_date
    assert pulled.digest == image.digest
    assert pulled.record.digest == image.digest
    assert pulled.record.id == image.id
    assert pulled.record.names == (ref,)
    loaded = other_store.load_image(pulled.record.descriptor)
    assert loaded.raw_manifest == image.raw_manifest
    assert loaded.raw_config == image.raw_config
    assert fsck(other_store).ok

    again = pull_image(other_store, ref, client=client)
    assert again.up_to_date
    second_push: list[LayerProgress] = []
    push_image(store, ref, client=client, progress=second_push.append)
    finals = {e.status for e in second_push if e.status.final}
    assert finals == {Status.LAYER_EXISTS}


def test_docker_schema2_image_round_trip(
    registry: RegistryServer, store: Store, other_store: Store, make_client: MakeClient
) -> None:
    ref = f"{registry.host}/schema2/app:latest"
    image = make_image(store, (ref,), seed=2, docker=True)
    assert image.manifest.media_type == MediaType.DOCKER_MANIFEST
    client = make_client()
    push_image(store, ref, client=client)
    record = pull(other_store, ref, client=client)
    assert record.descriptor.media_type == MediaType.DOCKER_MANIFEST
    assert record.digest == image.digest


def test_pull_by_digest_and_again_without_network(
    registry: RegistryServer,
    store: Store,
    other_store: Store,
    make_proxy: Callable[[RegistryServer], FaultProxy],
    make_client: MakeClient,
) -> None:
    proxy = make_proxy(registry)
    ref = f"{proxy.host}/bydigest/app:v1"
    image = make_image(store, (ref,), seed=3)
    client = make_client()
    push_image(store, ref, client=client)
    by_digest = f"{proxy.host}/bydigest/app@{image.digest}"
    first = pull_image(other_store, by_digest, client=client)
    assert first.record.digest == image.digest
    assert first.record.names == (by_digest,)
    proxy.stop()  # a digest names immutable content: the second pull needs no registry
    second = pull_image(other_store, by_digest, client=make_client())
    assert second.up_to_date
    assert second.record.digest == image.digest
    assert fsck(other_store).ok


def _platform_image(store: Store, platform: Platform, seed: int) -> tuple[Descriptor, bytes]:
    base = make_image(store, (), seed=seed)
    image = mutate.with_platform(base, platform)
    store.write_image(image)
    desc = Descriptor(
        media_type=image.manifest.media_type,
        digest=image.digest,
        size=len(image.raw_manifest),
        platform=platform,
    )
    return desc, image.raw_manifest


def test_multi_platform_index_push_and_platform_selection(
    registry: RegistryServer, store: Store, tmp_path: Path, make_client: MakeClient
) -> None:
    ref = f"{registry.host}/multi/app:v1"
    amd64, _ = _platform_image(store, Platform(os="linux", architecture="amd64"), 10)
    arm64, _ = _platform_image(store, Platform(os="linux", architecture="arm64", variant="v8"), 11)
    armv7, _ = _platform_image(store, Platform(os="linux", architecture="arm", variant="v7"), 12)
    index = Index(manifests=(amd64, arm64, armv7))
    data = index.to_bytes()
    index_desc = store.put_bytes(data, media_type=MediaType.OCI_INDEX)
    store.add_index_entry(index_desc, (ref,))
    client = make_client()
    pushed = push_image(store, ref, client=client)
    assert pushed.digest == Digest.of_bytes(data)

    for platform, want in (
        ("linux/arm64", arm64),
        ("linux/arm/v7", armv7),
        ("linux/amd64", amd64),
    ):
        target = Store.open(tmp_path / platform.replace("/", "-"))
        result = pull_image(target, ref, client=client, platform=Platform.parse(platform))
        assert result.digest == pushed.digest  # Docker prints the index digest
        assert result.record.digest == want.digest
        assert result.record.platform is not None
        assert str(result.record.platform) == str(want.platform)
        assert fsck(target).ok

    by_digest = f"{registry.host}/multi/app@{pushed.digest}"
    target = Store.open(tmp_path / "by-digest")
    arm = pull_image(target, by_digest, client=client, platform=Platform.parse("linux/arm64"))
    assert arm.record.digest == arm64.digest
    again = pull_image(target, by_digest, client=client, platform=Platform.parse("linux/arm64"))
    assert again.up_to_date
    assert again.record.digest == arm64.digest
    amd = pull_image(target, by_digest, client=client, platform=Platform.parse("linux/amd64"))
    assert amd.record.digest == amd64.digest

    target = Store.open(tmp_path / "s390x")
    with pytest.raises(ManifestNotFoundError, match=r"no matching manifest for linux/s390x"):
        pull_image(target, ref, client=client, platform=Platform.parse("linux/s390x"))
    assert fsck(target).ok
    assert not list(target.cas.digests())


def test_single_manifest_with_wrong_platform_is_refused(
    registry: RegistryServer, store: Store, other_store: Store, make_client: MakeClient
) -> None:
    ref = f"{registry.host}/single/app:v1"
    make_image(store, (ref,), seed=13)  # linux/amd64 config
    client = make_client()
    push_image(store, ref, client=client)
    with pytest.raises(RegistryError, match=r"does not match the specified platform"):
        pull_image(other_store, ref, client=client, platform=Platform.parse("linux/arm64"))
    assert fsck(other_store).ok
    assert other_store.list_images() == ()


def test_cross_repository_mount_and_chunked_upload(
    registry: RegistryServer,
    store: Store,
    make_proxy: Callable[[RegistryServer], FaultProxy],
    make_client: MakeClient,
) -> None:
    proxy = make_proxy(registry)
    first = f"{proxy.host}/mount/source:v1"
    image = make_image(store, (first,), layer_sizes=(5000, 150_000), seed=14)
    client = make_client(chunk_size=40_000)
    push_image(store, first, client=client)
    patches = proxy.requests("PATCH", r"/v2/mount/source/blobs/uploads/")
    sizes = [layer.descriptor.size for layer in image.layers]
    assert max(sizes) > 40_000
    assert len(patches) == sum(-(-n // 40_000) for n in sizes if n > 40_000)

    second = f"{proxy.host}/mount/copy:v2"
    store.tag(first, second)
    events: list[LayerProgress] = []
    pushed = push_image(store, second, client=client, progress=events.append)
    assert pushed.digest == image.digest
    mounted = [e for e in events if e.status is Status.MOUNTED]
    assert {e.digest for e in mounted} == {layer.descriptor.digest for layer in image.layers}
    assert all(e.detail == "mount/source" for e in mounted)
    mounts = proxy.requests("POST", r"/v2/mount/copy/blobs/uploads/\?.*mount=sha256")
    assert mounts
    assert not proxy.requests("PATCH", r"/v2/mount/copy/")
    assert not proxy.requests("PUT", r"/v2/mount/copy/blobs/")


def test_docker_hub_pulls_go_to_the_configured_mirror(
    registry: RegistryServer, store: Store, other_store: Store, make_client: MakeClient
) -> None:
    local = f"{registry.host}/library/mirrored:v1"
    image = make_image(store, (local,), seed=15)
    client = make_client()
    push_image(store, local, client=client)
    mirror = Mirror(scheme="http", host=registry.host)
    mirrored = make_client(settings=RegistrySettings(mirrors=(mirror,)))
    result = pull_image(other_store, "mirrored:v1", client=mirrored)
    assert result.record.digest == image.digest
    assert result.record.names == ("docker.io/library/mirrored:v1",)


def test_unknown_tag_and_unknown_repository(
    registry: RegistryServer, store: Store, make_client: MakeClient
) -> None:
    ref = f"{registry.host}/unknown/app:v1"
    make_image(store, (ref,), seed=16)
    client = make_client()
    push_image(store, ref, client=client)
    with pytest.raises(ManifestNotFoundError) as tag_err:
        pull_image(store, f"{registry.host}/unknown/app:nosuch", client=client)
    assert str(tag_err.value) == (
        f"{registry.host}/unknown/app:nosuch: not found: manifest unknown"
    )
    with pytest.raises(ManifestNotFoundError) as repo_err:
        pull_image(store, f"{registry.host}/nosuch/repo:v1", client=client)
    assert str(repo_err.value).startswith(f"{registry.host}/nosuch/repo:v1: not found:")
    assert fsck(store).ok


# -- the commands -------------------------------------------------------------------------------


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = cli.main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_push_and_pull_print_docker_lines(
    registry: RegistryServer,
    store: Store,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYBUILD_CONFIG", str(tmp_path / "none.json"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    ref = f"{registry.host}/cli/app:v1"
    image = make_image(store, (ref,), seed=17)
    code, out, err = _run(["push", ref, "--root", str(store.root)], capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"The push refers to repository [{registry.host}/cli/app]"
    assert sorted(lines[1:-1]) == sorted(
        f"{layer.descriptor.digest.short}: Pushed" for layer in image.layers
    )
    assert lines[-1] == f"v1: digest: {image.digest} size: {len(image.raw_manifest)}"

    root = tmp_path / "pulled"
    code, out, err = _run(["pull", f"{registry.host}/cli/app:v1", "--root", str(root)], capsys)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "v1: Pulling from cli/app"
    assert sorted(lines[1:-3]) == sorted(
        f"{layer.descriptor.digest.short}: Pull complete" for layer in image.layers
    )
    assert lines[-3:] == [
        f"Digest: {image.digest}",
        f"Status: Downloaded newer image for {registry.host}/cli/app:v1",
        f"{registry.host}/cli/app:v1",
    ]
    code, out, _ = _run(["pull", f"{registry.host}/cli/app:v1", "--root", str(root)], capsys)
    assert code == 0
    assert f"Status: Image is up to date for {registry.host}/cli/app:v1" in out.splitlines()


def test_cli_errors_are_one_line(
    registry: RegistryServer,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PYBUILD_CONFIG", str(tmp_path / "none.json"))
    root = str(tmp_path / "store")
    code, _, err = _run(["pull", f"{registry.host}/nothing/here:v1", "--root", root], capsys)
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith(f"ERROR: {registry.host}/nothing/here:v1: not found:")

    code, _, err = _run(["push", f"{registry.host}/absent/img:v1", "--root", root], capsys)
    assert code == 1
    assert err == (
        f"ERROR: An image does not exist locally with the tag: {registry.host}/absent/img\n"
    )

    code, _, err = _run(["pull", "127.0.0.1:9/x/y:v1", "--root", root], capsys)
    assert code == 1
    assert err.count("\n") == 1
    assert err.startswith("ERROR: 127.0.0.1:9/x/y:v1: cannot connect to 127.0.0.1:9:")

    code, _, err = _run(["pull", "Bad//Ref", "--root", root], capsys)
    assert code == 1
    assert err.startswith("ERROR: invalid reference format")
    assert fsck(Store.open(Path(root))).ok
