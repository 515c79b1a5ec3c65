"""docker-archive / OCI archive round trips, rootfs import, and hostile archives."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from pathlib import Path

import pytest
from storekit import image, layer

from builder.digest import Digest
from builder.errors import DigestMismatchError, StoreError
from builder.oci.layer import LayerEntry, list_entries, write_layer
from builder.oci.types import Compression, MediaType, Platform
from builder.store import Store
from builder.store.archive import ArchiveFormat, import_rootfs, load_archive, save_archive
from builder.store.fsck import fsck


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "src")


@pytest.fixture
def other(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "dst")


def _members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def _save(store: Store, refs: list[str], fmt: ArchiveFormat = ArchiveFormat.DOCKER) -> bytes:
    out = io.BytesIO()
    save_archive(store, refs, out, format=fmt)
    return out.getvalue()


def _tar(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_docker_archive_has_what_docker_load_reads(store: Store) -> None:
    img = image({"a": b"1"}, {"b": b"2"})
    store.write_image(img, ("busybox:1.36",))
    members = _members(_save(store, ["busybox:1.36"]))
    (entry,) = json.loads(members["manifest.json"])
    assert entry["RepoTags"] == ["busybox:1.36"]
    assert entry["Config"] == f"blobs/sha256/{img.id.hex}"
    assert members[entry["Config"]] == img.raw_config
    assert entry["Layers"] == [f"blobs/sha256/{d.digest.hex}" for d in img.manifest.layers]
    for path, layer_ in zip(entry["Layers"], img.layers, strict=True):
        assert list_entries(io.BytesIO(members[path]))  # a readable layer
        assert Digest.of_bytes(members[path]) == layer_.descriptor.digest
    top = img.manifest.layers[-1].digest.hex
    assert json.loads(members["repositories"]) == {"busybox": {"1.36": top}}
    index = json.loads(members["index.json"])
    assert index["manifests"][0]["annotations"] == {
        "io.containerd.image.name": "docker.io/library/busybox:1.36",
        "org.opencontainers.image.ref.name": "1.36",
    }
    assert members["oci-layout"] == b'{"imageLayoutVersion":"1.0.0"}'


def test_saved_archives_are_deterministic(store: Store) -> None:
    store.write_image(image({"a": b"1"}), ("x",))
    assert _save(store, ["x"]) == _save(store, ["x"])


@pytest.mark.parametrize("fmt", list(ArchiveFormat))
def test_round_trip_keeps_digests(store: Store, other: Store, fmt: ArchiveFormat) -> None:
    img = image({"a": b"1"}, {"b": b"2"})
    store.write_image(img, ("app:1",))
    (rec,) = load_archive(other, io.BytesIO(_save(store, ["app:1"], fmt)), name="app.tar")
    assert rec.digest == img.digest
    assert rec.names == ("docker.io/library/app:1",)
    assert fsck(other).ok


def test_gzipped_archive_loads_with_new_tag(store: Store, other: Store) -> None:
    img = image({"a": b"1"})
    store.write_image(img, ("app",))
    data = gzip.compress(_save(store, ["app"], ArchiveFormat.OCI))
    (rec,) = load_archive(other, io.BytesIO(data), tags=("renamed:2",))
    assert rec.names == ("docker.io/library/renamed:2",)


def test_legacy_docker_archive_with_uncompressed_layers(other: Store) -> None:
    """``docker save`` before v25: ``<id>/layer.tar`` (plain tar) and ``<hex>.json``."""
    out = io.BytesIO()
    result = write_layer([LayerEntry(path="f", data=b"x")], out, compression=Compression.NONE)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [str(result.diff_id)]},
    }
    raw_config = json.dumps(config).encode()
    config_name = f"{Digest.of_bytes(raw_config).hex}.json"
    manifest = [{"Config": config_name, "RepoTags": ["legacy:old"], "Layers": ["abc/layer.tar"]}]
    data = _tar(
        {
            "abc/layer.tar": out.getvalue(),
            "abc/VERSION": b"1.0",
            config_name: raw_config,
            "manifest.json": json.dumps(manifest).encode(),
        }
    )
    (rec,) = load_archive(other, io.BytesIO(data), name="legacy.tar")
    img = other.load_image(rec.descriptor)
    assert img.manifest.media_type == MediaType.DOCKER_MANIFEST
    assert img.manifest.layers[0].media_type == MediaType.DOCKER_LAYER
    assert img.layers[0].diff_id == result.diff_id
    assert rec.names == ("docker.io/library/legacy:old",)
    assert img.config.config.cmd == ("sh",)


def test_truncated_archive_is_one_line_error(store: Store, other: Store) -> None:
    store.write_image(image({"a": b"1" * 5000}), ("x",))
    data = _save(store, ["x"])
    with pytest.raises(StoreError, match=r"^broken\.tar: corrupt or truncated archive: ") as info:
        load_archive(other, io.BytesIO(data[: len(data) // 2]), name="broken.tar")
    assert "\n" not in str(info.value)
    assert list((other.root / "ingest").iterdir()) == []


def test_blob_member_with_wrong_content_is_refused(store: Store, other: Store) -> None:
    img = image({"a": b"1"})
    store.write_image(img, ("x",))
    members = _members(_save(store, ["x"]))
    name = f"blobs/sha256/{img.manifest.layers[0].digest.hex}"
    members[name] = members[name][:-1] + bytes([members[name][-1] ^ 1])
    with pytest.raises(DigestMismatchError, match=rf"member '{name}'"):
        load_archive(other, io.BytesIO(_tar(members)), name="evil.tar")
    assert not other.has_blob(img.manifest.layers[0].digest)


def test_missing_member_is_named(store: Store, other: Store) -> None:
    img = image({"a": b"1"})
    store.write_image(img, ("x",))
    members = _members(_save(store, ["x"]))
    del members["index.json"]
    del members[f"blobs/sha256/{img.manifest.layers[0].digest.hex}"]
    with pytest.raises(StoreError, match=r"references 'blobs/sha256/[0-9a-f]+', which is not"):
        load_archive(other, io.BytesIO(_tar(members)), name="m.tar")


def test_diff_id_mismatch_is_refused(other: Store) -> None:
    lay = layer({"f": b"x"})
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [str(Digest.of_bytes(b"lie"))]},
    }
    manifest = [{"Config": "c.json", "RepoTags": None, "Layers": ["l.tar.gz"]}]
    data = _tar(
        {
            "l.tar.gz": lay.data,
            "c.json": json.dumps(config).encode(),
            "manifest.json": json.dumps(manifest).encode(),
        }
    )
    with pytest.raises(DigestMismatchError, match="has diff_id"):
        load_archive(other, io.BytesIO(data), name="d.tar")
    assert other.list_images() == ()


def test_not_an_image_archive(other: Store) -> None:
    with pytest.raises(StoreError, match=r"x\.tar: neither manifest\.json nor index\.json"):
        load_archive(other, io.BytesIO(_tar({"hello": b"world"})), name="x.tar")


def test_garbage_is_a_store_error(other: Store) -> None:
    with pytest.raises(StoreError, match=r"^junk: corrupt or truncated archive"):
        load_archive(other, io.BytesIO(b"\x1f\x8b\x08garbage" * 10), name="junk")


def test_import_rootfs_makes_one_layer_image(other: Store) -> None:
    rootfs_tar = _tar({"etc/os-release": b"ID=test\n", "bin/sh": b"#!"})
    rec = import_rootfs(
        other,
        io.BytesIO(gzip.compress(rootfs_tar)),
        tags=("imported:1",),
        platform=Platform.parse("linux/arm64"),
        created=0,
        source="rootfs.tar.gz",
    )
    img = other.load_image(rec.descriptor)
    assert rec.names == ("docker.io/library/imported:1",)
    assert img.config.diff_ids == (Digest.of_bytes(rootfs_tar),)
    assert img.config.architecture == "arm64"
    assert img.config.created == "1970-01-01T00:00:00Z"
    assert img.config.history[0].comment == "Imported from rootfs.tar.gz"
    assert img.manifest.layers[0].media_type == MediaType.OCI_LAYER_GZIP
    with img.layers[0].open_compressed() as stream:
        names = [e.name for e in list_entries(stream)]
    assert names == ["etc/os-release", "bin/sh"]
    assert fsck(other).ok


def test_import_rootfs_rejects_non_tar(other: Store) -> None:
    with pytest.raises(StoreError, match=r"^notes\.txt: not a valid rootfs tar"):
        import_rootfs(other, io.BytesIO(b"hello world" * 100), source="notes.txt")
    assert list((other.root / "ingest").iterdir()) == []
    assert other.list_images() == ()
