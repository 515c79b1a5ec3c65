"""The Store API: layout on disk, images, tags, resolution, concurrency, crash safety."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest
from storekit import image

from builder.digest import Digest
from builder.errors import InvalidReferenceError, StoreError
from builder.oci import mutate
from builder.oci.image import EMPTY
from builder.oci.layer import apply_layer
from builder.oci.types import History, MediaType
from builder.store import CONTAINERD_NAME, REF_NAME, Store, default_store_root
from builder.store.fsck import fsck


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


def test_open_creates_oci_layout_and_private_dirs(store: Store) -> None:
    root = store.root
    assert json.loads((root / "oci-layout").read_bytes()) == {"imageLayoutVersion": "1.0.0"}
    assert json.loads((root / "index.json").read_bytes()) == {
        "manifests": [],
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "schemaVersion": 2,
    }
    for name in ("blobs/sha256", "ingest", "locks", "cache", "snapshots", "tmp"):
        assert (root / name).is_dir()


def test_default_store_root_resolution() -> None:
    assert default_store_root({"PYBUILD_ROOT": "/x/y"}) == Path("/x/y")
    assert default_store_root({}, euid=0) == Path("/var/lib/pybuild")
    assert default_store_root({"XDG_DATA_HOME": "/d"}, euid=1000) == Path("/d/pybuild")
    assert default_store_root({"HOME": "/home/u"}, euid=1000) == Path(
        "/home/u/.local/share/pybuild"
    )


def test_write_resolve_load_round_trip(store: Store, tmp_path: Path) -> None:
    img = image({"etc/hostname": b"box"}, {"bin/app": b"#!app"})
    rec = store.write_image(img, ("busybox", "localhost:5000/team/app:v1"))
    assert rec.names == ("docker.io/library/busybox:latest", "localhost:5000/team/app:v1")
    assert rec.digest == img.digest
    assert rec.id == img.id
    assert store.resolve("busybox:latest") == store.resolve("docker.io/library/busybox")
    assert store.resolve(str(img.digest)).digest == img.digest
    assert store.resolve(img.id.hex[:12]).digest == img.digest
    assert store.resolve(f"busybox@{img.digest}").digest == img.digest
    loaded = store.load_image(rec.descriptor)
    assert loaded.raw_manifest == img.raw_manifest
    assert loaded.raw_config == img.raw_config
    rootfs = tmp_path / "rootfs"
    rootfs.mkdir()
    for layer in loaded.layers:
        with layer.open_compressed() as stream:
            apply_layer(stream, rootfs, expected_diff_id=layer.diff_id)
    assert (rootfs / "bin" / "app").read_bytes() == b"#!app"


def test_index_json_entries_are_skopeo_and_containerd_readable(store: Store) -> None:
    img = image({"a": b"1"})
    store.write_image(img, ("busybox",))
    (entry,) = json.loads((store.root / "index.json").read_bytes())["manifests"]
    assert entry["annotations"] == {
        REF_NAME: "docker.io/library/busybox:latest",
        CONTAINERD_NAME: "docker.io/library/busybox:latest",
    }
    assert entry["digest"] == str(img.digest)
    blob = store.root / "blobs" / "sha256" / img.digest.hex
    assert blob.read_bytes() == img.raw_manifest


def test_list_images_groups_names(store: Store) -> None:
    a, b = image({"a": b"1"}), image({"b": b"2"})
    store.write_image(a, ("one", "two"))
    store.write_image(b, ("three",))
    listed = {r.digest: r.names for r in store.list_images()}
    assert listed == {
        a.digest: ("docker.io/library/one:latest", "docker.io/library/two:latest"),
        b.digest: ("docker.io/library/three:latest",),
    }
    assert all(r.size > 0 for r in store.list_images())


def test_retag_moves_name_and_keeps_old_image_dangling(store: Store) -> None:
    old, new = image({"v": b"1"}), image({"v": b"2"})
    store.write_image(old, ("app",))
    store.write_image(new, ("app",))
    assert store.resolve("app").digest == new.digest
    dangling = [r for r in store.list_images() if r.digest == old.digest]
    assert len(dangling) == 1
    assert dangling[0].names == ()


def test_tag_and_untag(store: Store) -> None:
    img = image({"a": b"1"})
    store.write_image(img)
    rec = store.tag(str(img.digest), "registry.example.com/app:1.0")
    assert rec.names == ("registry.example.com/app:1.0",)
    assert store.untag("registry.example.com/app:1.0")
    assert not store.untag("registry.example.com/app:1.0")
    with pytest.raises(StoreError, match=r"No such image: registry\.example\.com/app:1\.0"):
        store.resolve("registry.example.com/app:1.0")


def test_untagged_write_is_dangling_but_listed(store: Store) -> None:
    img = image({"a": b"1"})
    rec = store.write_image(img)
    assert rec.names == ()
    assert [r.digest for r in store.list_images()] == [img.digest]


def test_resolve_errors(store: Store) -> None:
    with pytest.raises(StoreError, match="No such image: nothing"):
        store.resolve("nothing")
    with pytest.raises(InvalidReferenceError, match="must be lowercase"):
        store.resolve("BusyBox")
    with pytest.raises(InvalidReferenceError, match="digest reference"):
        store.write_image(image({"a": b"1"}), (f"x@sha256:{'a' * 64}",))


def test_lookup_tells_names_from_ids_and_digests(store: Store) -> None:
    img = image({"a": b"1"})
    store.write_image(img, ("app:1", "app:2"))
    (entry,) = store.entries()
    assert entry.names == ("docker.io/library/app:1", "docker.io/library/app:2")
    assert entry.descriptor.annotations == ()  # one descriptor per image, whatever its names
    assert store.lookup("app:1") == (entry, False)
    assert store.lookup(str(img.digest)) == (entry, True)
    assert store.lookup(f"app@{img.digest}") == (entry, True)
    assert store.lookup(str(img.id)) == (entry, True)
    assert store.lookup(img.id.hex[:7]) == (entry, True)
    assert store.image_id(entry) == img.id


def test_lookup_by_name_survives_a_damaged_image(store: Store) -> None:
    img = image({"a": b"1"})
    rec = store.write_image(img, ("broken:1",))
    (store.root / "blobs" / "sha256" / rec.digest.hex).unlink()  # the manifest
    entry, by_id = store.lookup("broken:1")
    assert (entry.digest, by_id) == (img.digest, False)
    assert store.image_id(entry) is None
    with pytest.raises(StoreError, match="No such image: " + img.id.hex[:12]):
        store.lookup(img.id.hex[:12])  # an ID needs the manifest
    with pytest.raises(StoreError):
        store.resolve("broken:1")  # describing it needs the manifest too


def test_ambiguous_id_prefix_is_an_error(store: Store) -> None:
    ids = [store.write_image(image({"n": str(i).encode()})).id for i in range(17)]
    first = [d.hex[0] for d in ids]
    shared = next(c for c in first if first.count(c) > 1)  # 17 IDs, 16 hex digits
    with pytest.raises(StoreError, match=f"image ID prefix '{shared}' is ambiguous"):
        store.lookup(shared)
    unique = ids[first.index(shared)].hex[:40]
    assert store.image_id(store.lookup(unique)[0]) == ids[first.index(shared)]


def test_snapshot_dir_is_keyed_by_chain_id(store: Store) -> None:
    img = image({"a": b"1"}, {"b": b"2"})
    path = store.snapshot_dir(img.config.diff_ids)
    assert path.parent == store.root / "snapshots"
    assert path.name != img.config.diff_ids[1].hex


def test_failed_index_replace_keeps_old_index(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write_image(image({"a": b"1"}), ("keep",))
    before = (store.root / "index.json").read_bytes()

    def boom(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(StoreError, match=r"no space left on device during update of .*index\.json"):
        store.write_image(image({"b": b"2"}), ("other",))
    monkeypatch.undo()
    assert (store.root / "index.json").read_bytes() == before
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".index.json")] == []
    assert fsck(store).ok
    store.write_image(image({"b": b"2"}), ("other",))
    assert store.resolve("other")


def _writer(root: str, n: int) -> None:
    store = Store.open(root)
    for i in range(3):
        store.write_image(image({f"p{n}": str(i).encode()}), (f"proc{n}:{i}",))
        store.write_image(image({"shared": b"same"}), ("shared",))


def test_several_processes_share_a_store(store: Store) -> None:
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(store.root), n)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    names = {n for r in store.list_images() for n in r.names}
    expected = {f"docker.io/library/proc{n}:{i}" for n in range(4) for i in range(3)}
    assert expected | {"docker.io/library/shared:latest"} == names
    assert fsck(store).ok


def test_store_on_bad_root_is_a_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(StoreError, match="cannot create the image store"):
        Store.open(blocker / "store")


def test_load_image_rejects_layer_count_mismatch(store: Store) -> None:
    img = image({"a": b"1"})
    rec = store.write_image(img, ("x",))
    manifest = json.loads(img.raw_manifest)
    manifest["layers"] = []
    raw = json.dumps(manifest).encode()
    desc = store.put_bytes(raw, media_type=rec.descriptor.media_type)
    with pytest.raises(StoreError, match="1 diff_ids for 0 layers"):
        store.load_image(desc)


def test_layer_stream_from_store_is_verified(store: Store) -> None:
    img = image({"a": b"1" * 1000})
    rec = store.write_image(img, ("x",))
    layer = store.load_image(rec.descriptor).layers[0]
    path = store.root / "blobs" / "sha256" / layer.descriptor.digest.hex
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(StoreError), layer.open_compressed() as stream:
        apply_layer(stream, store.root / "tmp")


def test_write_layer_into_store_then_image(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "ctx"
    (src / "app").mkdir(parents=True)
    (src / "app" / "main.py").write_bytes(b"print('hi')\n")
    with store.lease():
        layer = store.write_layer(src, source_date_epoch=0)
        img = mutate.append_layer(EMPTY, layer, history=History(created_by="COPY . /"))
        rec = store.write_image(img, ("built",))
    loaded = store.load_image(rec.descriptor)
    assert loaded.layers[0].diff_id == layer.diff_id
    assert loaded.manifest.layers[0].media_type == MediaType.OCI_LAYER_GZIP
    assert fsck(store).ok


def test_blob_lock_rechecks_existence(store: Store) -> None:
    present = store.put_bytes(b"x")
    with store.blob_lock(present.digest) as exists:
        assert exists
    with store.blob_lock(Digest.of_bytes(b"not yet")) as exists:
        assert not exists


def _unpack(store: Store, name: str, rootfs: Path) -> None:
    img = store.load_image(store.resolve(name).descriptor)
    for lay in img.layers:
        with lay.open_compressed() as stream:
            apply_layer(stream, rootfs, expected_diff_id=lay.diff_id)


def test_every_blob_corrupted_in_turn_fails_the_unpack(tmp_path: Path) -> None:
    """umoci hardening.bats "[blob hash hardening]": corrupt each blob, unpack must fail."""
    img = image({"a": b"A" * 3000}, {"b": b"B" * 3000})
    digests = [img.digest, img.id, *(d.digest for d in img.manifest.layers)]
    for i, digest in enumerate(digests):
        store = Store.open(tmp_path / f"s{i}")
        store.write_image(img, ("x",))
        path = store.root / "blobs" / "sha256" / digest.hex
        path.chmod(0o644)
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x20
        path.write_bytes(bytes(data))
        rootfs = tmp_path / f"r{i}"
        rootfs.mkdir()
        with pytest.raises(StoreError):
            _unpack(store, "x", rootfs)
        assert not fsck(store).ok


def test_open_removes_index_temp_files_a_killed_writer_left(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "s")
    index = (store.root / "index.json").read_bytes()
    left = store.root / ".index.json.0123abcd.tmp"
    left.write_bytes(b'{"torn')
    other = store.root / ".oci-layout.0123abcd.tmp"  # not an index write: not touched here
    other.write_bytes(b"x")
    Store.open(store.root)
    assert not left.exists()
    assert other.exists()
    assert (store.root / "index.json").read_bytes() == index
