"""fsck: every blob's name equals sha256(content), every reference resolves, no leftovers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from storekit import image

from builder.digest import Digest
from builder.oci.types import Descriptor
from builder.store import CacheRecord, Store, paths
from builder.store.fsck import fsck
from builder.store.gc import prune


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(tmp_path / "store")
    s.write_image(image({"a": b"1"}, {"b": b"2"}), ("app",))
    return s


def _flip(path: Path) -> None:
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x10
    path.write_bytes(bytes(data))


def test_clean_store_is_ok(store: Store) -> None:
    report = fsck(store)
    assert report.ok
    assert report.checked_blobs == 4
    assert report.checked_images == 1


def test_corrupt_blob_is_reported_and_repair_quarantines(store: Store) -> None:
    rec = store.resolve("app")
    layer = store.load_image(rec.descriptor).manifest.layers[1]
    _flip(store.root / "blobs" / "sha256" / layer.digest.hex)
    report = fsck(store)
    assert report.corrupt() == (str(layer.digest),)
    assert not report.ok
    repaired = fsck(store, repair=True)
    assert repaired.corrupt() == (str(layer.digest),)
    assert not store.has_blob(layer.digest)
    after = fsck(store)
    assert after.missing() == (str(layer.digest),)


def test_missing_config_is_reported(store: Store) -> None:
    rec = store.resolve("app")
    (store.root / "blobs" / "sha256" / rec.config_digest.hex).unlink()
    report = fsck(store)
    assert report.missing() == (str(rec.config_digest),)
    assert "manifest" in str(report.problems[0])


def test_size_mismatch_and_bad_manifest_are_invalid(store: Store) -> None:
    rec = store.resolve("app")
    bad = store.put_bytes(b'{"schemaVersion":2,"manifests":[]}')
    store.add_index_entry(
        Descriptor(
            media_type="application/vnd.oci.image.manifest.v1+json",
            digest=bad.digest,
            size=bad.size,
        ),
        ("broken",),
    )
    report = fsck(store)
    kinds = {(p.kind, p.subject) for p in report.problems}
    assert ("invalid", str(bad.digest)) in kinds
    assert rec.digest not in {p.subject for p in report.problems}


def test_cache_record_with_missing_root_is_reported(store: Store) -> None:
    ghost = Descriptor(media_type="x", digest=Digest.of_bytes(b"ghost"), size=5)
    (store.root / "cache" / f"{Digest.of_bytes(b'k').hex}.json").write_bytes(
        CacheRecord(key=Digest.of_bytes(b"k"), roots=(ghost,)).to_bytes()
    )
    assert fsck(store).missing() == (str(ghost.digest),)


def test_stray_and_stale_files_are_reported(store: Store) -> None:
    (store.root / "blobs" / "sha256" / "not-a-digest").write_bytes(b"")
    (store.root / "ingest" / "x.tmp").write_bytes(b"partial")
    kinds = sorted(p.kind for p in fsck(store).problems)
    assert kinds == ["stale", "stray"]
    fsck(store, repair=True)
    assert not (store.root / "ingest" / "x.tmp").exists()


def test_every_state_directory_is_known_and_anything_else_is_stray(store: Store) -> None:
    for state in paths.STATE_DIRS:
        (store.root / state.name).mkdir(exist_ok=True)
    assert fsck(store).ok
    (store.root / "leftover").mkdir()
    report = fsck(store)
    assert [(p.kind, p.subject) for p in report.problems] == [
        ("stray", str(store.root / "leftover"))
    ]


def test_store_open_creates_only_known_entries(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "fresh")
    created = {p.name for p in store.root.iterdir()}
    assert created == {d.name for d in paths.STATE_DIRS if d.at_open} | set(paths.STORE_FILES)


def test_prune_empties_the_temporary_state_directories(store: Store) -> None:
    temporary = [d.name for d in paths.STATE_DIRS if d.temporary]
    assert temporary == ["tmp", "corrupt", "git"]
    for name in temporary:
        (store.root / name / "junk").write_text("x")
    prune(store)
    assert all(not any((store.root / name).iterdir()) for name in temporary)


def _container_using(store: Store, name: str, image_ref: str) -> Path:
    """A container directory as ``run`` leaves it: ``containers/<id>/image.json``."""
    directory = store.root / "containers" / name
    directory.mkdir(parents=True)
    descriptor = store.resolve(image_ref).descriptor
    (directory / "image.json").write_text(json.dumps(descriptor.to_json()))
    return directory


def test_containers_images_are_checked(store: Store) -> None:
    _container_using(store, "c0ffee" * 4, "app")
    assert fsck(store).ok  # containers/ is a known state directory, its image whole
    rec = store.resolve("app")
    store.untag("app")
    store.remove_image(rec.descriptor.digest)
    assert fsck(store).ok  # the container's image is still whole
    (store.root / "blobs" / "sha256" / rec.descriptor.digest.hex).unlink()
    report = fsck(store)
    assert report.missing() == (str(rec.descriptor.digest),)
    assert str(report.problems[0]).endswith("referenced by container c0ffeec0ffee")


def test_unreadable_container_image_record_is_invalid(store: Store) -> None:
    directory = _container_using(store, "bad", "app")
    (directory / "image.json").write_text("[]")
    report = fsck(store)
    assert [p.kind for p in report.problems] == ["invalid"]
    assert report.problems[0].subject == str(directory / "image.json")
