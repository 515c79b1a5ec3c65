"""Prune: mark from index.json and cache records, sweep the rest, never sweep on bad roots."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest
from storekit import image

from builder.digest import Digest
from builder.errors import StoreError
from builder.store import CacheRecord, Store
from builder.store.fsck import fsck
from builder.store.gc import prune


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


def _blobs(store: Store) -> set[str]:
    return {p.name for p in (store.root / "blobs" / "sha256").iterdir()}


def _all_digests(store: Store, img_digest: Digest) -> set[str]:
    img = store.load_image(store.resolve(str(img_digest)).descriptor)
    return {
        img.digest.hex,
        img.manifest.config.digest.hex,
        *(layer.descriptor.digest.hex for layer in img.layers),
    }


def test_prune_removes_only_unreferenced_blobs(store: Store) -> None:
    keep = image({"keep": b"1"}, {"more": b"2"})
    store.write_image(keep, ("keep",))
    orphan = store.put_bytes(b"orphan blob")
    report = prune(store)
    assert report.removed == (orphan.digest,)
    assert report.reclaimed_bytes == len(b"orphan blob")
    assert _blobs(store) == _all_digests(store, keep.digest)
    assert fsck(store).ok


def test_dry_run_removes_nothing(store: Store) -> None:
    orphan = store.put_bytes(b"orphan")
    report = prune(store, dry_run=True)
    assert report.removed == (orphan.digest,)
    assert report.dry_run
    assert orphan.digest.hex in _blobs(store)


def test_untagged_image_is_collected_after_untag(store: Store) -> None:
    img = image({"a": b"1"})
    store.write_image(img, ("gone",))
    store.untag("gone")
    assert prune(store).reclaimed_bytes > 0
    assert _blobs(store) == set()


def test_dangling_images_kept_unless_asked(store: Store) -> None:
    old = image({"v": b"1"})
    store.write_image(old, ("app",))
    store.write_image(image({"v": b"2"}), ("app",))
    prune(store)
    assert old.digest.hex in _blobs(store)
    report = prune(store, dangling=True)
    assert report.removed_dangling == 1
    assert old.digest.hex not in _blobs(store)
    assert store.resolve("app")


def test_cache_records_are_roots(store: Store) -> None:
    img = image({"cached": b"1"})
    rec = store.write_image(img)
    store.cache.put(CacheRecord(key=Digest.of_bytes(b"key"), roots=(rec.descriptor,)))
    index = store.root / "index.json"  # drop the index root: only the cache record remains
    index.write_bytes(b'{"schemaVersion":2,"manifests":[]}')
    prune(store)
    assert img.digest.hex in _blobs(store)
    assert img.manifest.config.digest.hex in _blobs(store)
    assert all(layer.descriptor.digest.hex in _blobs(store) for layer in img.layers)


def test_prune_aborts_when_a_root_blob_is_missing(store: Store) -> None:
    img = image({"a": b"1"})
    store.write_image(img, ("x",))
    orphan = store.put_bytes(b"orphan")
    layer_blob = store.root / "blobs" / "sha256" / img.manifest.layers[0].digest.hex
    layer_blob.unlink()
    with pytest.raises(StoreError, match=r"prune aborted, nothing removed: .* is missing"):
        prune(store)
    assert orphan.digest.hex in _blobs(store)


def test_prune_aborts_when_a_root_manifest_is_corrupt(store: Store) -> None:
    img = image({"a": b"1"})
    store.write_image(img, ("x",))
    orphan = store.put_bytes(b"orphan")
    path = store.root / "blobs" / "sha256" / img.digest.hex
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"layers", b"Layers"))
    with pytest.raises(StoreError, match="prune aborted"):
        prune(store)
    assert orphan.digest.hex in _blobs(store)


def test_broken_cache_record_is_dropped_not_fatal(store: Store) -> None:
    img = image({"a": b"1"})
    rec = store.write_image(img)
    key = Digest.of_bytes(b"k")
    store.cache.put(CacheRecord(key=key, roots=(rec.descriptor,)))
    (store.root / "index.json").write_bytes(b'{"schemaVersion":2,"manifests":[]}')
    (store.root / "blobs" / "sha256" / img.manifest.config.digest.hex).unlink()
    report = prune(store)
    assert report.dropped_cache_records == 1
    assert store.cache.get(key) is None


def test_grace_period_protects_fresh_blobs(store: Store) -> None:
    fresh = store.put_bytes(b"fresh")
    old = store.put_bytes(b"old")
    os.utime(store.root / "blobs" / "sha256" / old.digest.hex, (0, 0))
    report = prune(store, grace_seconds=3600)
    assert report.removed == (old.digest,)
    assert fresh.digest.hex in _blobs(store)


def test_prune_drops_git_checkouts(store: Store) -> None:
    """git/ holds checkouts kept by commit ID: a cache that a later build fetches again."""
    (store.root / "git" / ("a" * 40) / "src").mkdir(parents=True)
    prune(store, dry_run=True)
    assert (store.root / "git" / ("a" * 40)).is_dir()
    prune(store)
    assert list((store.root / "git").iterdir()) == []
    assert fsck(store).ok


def test_prune_cleans_killed_process_leftovers(store: Store) -> None:
    """A process killed mid-write leaves ingest temp files and unreferenced blobs only."""
    (store.root / "ingest" / "abandoned.tmp").write_bytes(b"partial")
    (store.root / "tmp" / "scratch").mkdir()
    orphan = store.put_bytes(b"layer written, manifest never")
    assert not fsck(store).ok
    report = prune(store)
    assert report.removed_ingest == 1
    assert report.removed == (orphan.digest,)
    assert list((store.root / "ingest").iterdir()) == []
    assert list((store.root / "tmp").iterdir()) == []
    assert fsck(store).ok


def test_prune_inside_a_lease_is_refused(store: Store) -> None:
    with store.lease(), pytest.raises(StoreError, match="inside a lease"):
        prune(store)


def test_blob_written_under_lease_survives_concurrent_prune_attempt(store: Store) -> None:
    other = Store.open(store.root, lock_timeout=0.2)
    with store.lease():
        desc = store.put_blob(io.BytesIO(b"pulled, not yet referenced"))
        with pytest.raises(StoreError, match=r"timed out .* exclusive lock"):
            prune(other)
    assert store.has_blob(desc.digest)


def test_prune_drops_the_lock_files_of_fetches_and_steps(store: Store) -> None:
    digest = Digest.of_bytes(b"fetched")
    with store.blob_lock(digest), store.step_lock(Digest.of_bytes(b"step")):
        pass
    locks = store.root / "locks"
    assert f"{digest.hex}.lock" in {p.name for p in locks.iterdir()}
    assert any(p.name.startswith("step-") for p in locks.iterdir())
    prune(store)
    left = {p.name for p in locks.iterdir()}
    assert f"{digest.hex}.lock" not in left
    assert not any(name.startswith("step-") for name in left)
    assert "store.lock" in left
