"""``pybuild prune`` and ``pybuild fsck``, including stores damaged by hand."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from cmdkit import T0, imported, pybuild, rootfs_tar

from builder.digest import Digest
from builder.snapshot.layerdirs import LayerDirs
from builder.store import CacheRecord, Store
from builder.units import human_size


class _Stdin(io.StringIO):
    def isatty(self) -> bool:
        return False


def _blobs(root: Path) -> set[str]:
    return {p.name for p in (root / "blobs" / "sha256").iterdir()}


def test_prune_removes_dangling_images_and_their_blobs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = imported(tmp_path, {"a": b"old" * 1000}, "app:1", created=T0)
    new = imported(tmp_path, {"a": b"new" * 1000}, "app:1", created=T0 + 1)
    store = Store.open(tmp_path)
    old_layer = store.read_manifest(old.descriptor).layers[0]
    stray = store.put_bytes(b"nobody needs me")
    before = _blobs(tmp_path)
    gone = {old.digest.hex, old.config_digest.hex, old_layer.digest.hex, stray.digest.hex}
    freed = sum((tmp_path / "blobs" / "sha256" / h).stat().st_size for h in gone)
    assert pybuild(capsys, tmp_path, "images", "-q").out.split() == [
        new.config_digest.short,
        old.config_digest.short,
    ]
    r = pybuild(capsys, tmp_path, "prune", "-f")
    assert r.rc == 0
    assert _blobs(tmp_path) == before - gone
    assert r.out.splitlines() == [
        "Deleted Images:",
        f"deleted: {old.config_digest}",
        "",
        f"Total reclaimed space: {human_size(freed, 4)}",
    ]
    assert pybuild(capsys, tmp_path, "images", "-q").out.split() == [new.config_digest.short]
    again = pybuild(capsys, tmp_path, "prune", "-f")
    assert again.out == "Total reclaimed space: 0B\n"
    assert pybuild(capsys, tmp_path, "fsck").rc == 0


def test_prune_reclaimed_space_is_the_bytes_removed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    Store.open(tmp_path).put_bytes(b"x" * 12_345)
    r = pybuild(capsys, tmp_path, "prune", "-f")
    assert r.out == "Total reclaimed space: 12.35kB\n"  # go-units HumanSize: 4 digits


def test_prune_asks_first(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    blob = Store.open(tmp_path).put_bytes(b"garbage")
    monkeypatch.setattr(sys, "stdin", _Stdin("n\n"))
    no = pybuild(capsys, tmp_path, "prune")
    assert no.rc == 0
    assert no.out == (
        "WARNING! This will remove all dangling images.\nAre you sure you want to continue? [y/N] "
    )
    assert no.err == "image prune has been cancelled\n"
    assert blob.digest.hex in _blobs(tmp_path)
    monkeypatch.setattr(sys, "stdin", _Stdin("y\n"))
    yes = pybuild(capsys, tmp_path, "prune")
    assert yes.out.endswith("Total reclaimed space: 7B\n")
    assert blob.digest.hex not in _blobs(tmp_path)


def test_prune_all_drops_build_cache_records(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = Store.open(tmp_path)
    cached = store.put_bytes(b"a cached layer")
    key = Digest.of_bytes(b"some step")
    store.cache.put(CacheRecord(key=key, roots=(cached,)))
    assert pybuild(capsys, tmp_path, "prune", "-f").out == "Total reclaimed space: 0B\n"
    assert cached.digest.hex in _blobs(tmp_path)  # a cache record is a root
    r = pybuild(capsys, tmp_path, "prune", "-f", "--all")
    assert r.out == "Total reclaimed space: 14B\n"
    assert store.cache.get(key) is None
    assert cached.digest.hex not in _blobs(tmp_path)


def test_prune_refuses_a_damaged_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rec = imported(tmp_path, {"a": b"1"}, "app:1")
    store = Store.open(tmp_path)
    store.cas.blob_path(rec.config_digest).unlink()
    garbage = store.put_bytes(b"garbage")
    r = pybuild(capsys, tmp_path, "prune", "-f")
    assert r.rc == 1
    assert r.err.startswith("ERROR: prune aborted, nothing removed: ")
    assert str(rec.config_digest) in r.err
    assert r.err.endswith("run `pybuild fsck`\n")
    assert garbage.digest.hex in _blobs(tmp_path)


def test_fsck_clean_store(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    imported(tmp_path, {"a": b"1"}, "app:1", "app:2")
    r = pybuild(capsys, tmp_path, "fsck")
    assert (r.rc, r.out, r.err) == (0, "ok: 3 blobs, 2 images verified\n", "")


def test_fsck_finds_a_flipped_byte_and_repairs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = imported(tmp_path, {"a": b"1"}, "app:1")
    store = Store.open(tmp_path)
    layer = store.read_manifest(rec.descriptor).layers[0]
    path = store.cas.blob_path(layer.digest)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    r = pybuild(capsys, tmp_path, "fsck")
    assert r.rc == 1
    assert r.out == f"corrupt: {layer.digest}: content does not match its name\n"
    # the image commands name the broken blob too
    hist = pybuild(capsys, tmp_path, "history", "app:1")
    assert hist.rc == 1
    assert hist.err.startswith(f"ERROR: image app:1: blob corrupt: blob {layer.digest}: ")
    # reading it quarantined it: now it is missing, which fsck reports (and keeps reporting)
    after = pybuild(capsys, tmp_path, "fsck", "--repair")
    assert after.rc == 1
    assert after.out.splitlines()[0] == (
        f"missing: {layer.digest}: referenced by manifest {rec.digest}"
    )
    assert pybuild(capsys, tmp_path, "rmi", "app:1").rc == 0
    assert pybuild(capsys, tmp_path, "fsck").rc == 0


def test_fsck_reports_deleted_blob_and_garbage_index(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec = imported(tmp_path, {"a": b"1"}, "app:1")
    store = Store.open(tmp_path)
    store.cas.blob_path(rec.config_digest).unlink()
    r = pybuild(capsys, tmp_path, "fsck")
    assert (r.rc, r.out) == (
        1,
        f"missing: {rec.config_digest}: referenced by manifest {rec.digest}\n",
    )
    index = tmp_path / "index.json"
    index.write_text("{garbage")
    r = pybuild(capsys, tmp_path, "fsck")
    assert r.rc == 1
    assert r.out.startswith(f"invalid: index.json: {index}: invalid JSON: ")
    rootfs = tmp_path / "rootfs.tar"
    rootfs.write_bytes(rootfs_tar({"a": b"1"}))
    for argv in (
        ["images"],
        ["inspect", "app:1"],
        ["rmi", "app:1"],
        ["import", str(rootfs), "x:1"],
    ):
        bad = pybuild(capsys, tmp_path, *argv)
        assert bad.rc == 1, argv
        assert f"{index}: invalid JSON" in bad.err, argv
        assert bad.err.count("\n") == 1, argv


def test_prune_removes_the_layer_directories_no_image_uses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kept = imported(tmp_path, {"a": b"kept"}, "app:1", created=T0)
    store = Store.open(tmp_path)
    dirs = LayerDirs(store)
    used = dirs.path(store.load_image(kept.descriptor).config.diff_ids[:1])
    used.mkdir()
    unused = dirs.path((Digest.of_bytes(b"an image pruned long ago"),))
    unused.mkdir()
    (unused / "file").write_text("x")
    unused_marker = dirs.marker_path(unused, ".unsynced")
    unused_marker.touch()
    orphan_marker = dirs.marker_path(dirs.path((Digest.of_bytes(b"gone"),)), ".unsynced")
    orphan_marker.touch()
    abandoned = dirs.root / ".scratch-abandoned"  # its owner died: nobody holds its flock
    abandoned.mkdir()
    assert pybuild(capsys, tmp_path, "prune", "-f").rc == 0
    assert sorted(p.name for p in dirs.root.iterdir()) == [used.name]
