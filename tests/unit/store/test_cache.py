"""Cache records: written after their blobs, disposable when corrupt."""

from __future__ import annotations

from pathlib import Path

import pytest

from builder.digest import Digest
from builder.errors import StoreError
from builder.oci.types import Descriptor
from builder.store import CacheRecord, Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


def test_put_get_round_trip(store: Store) -> None:
    blob = store.put_bytes(b"layer", media_type="application/vnd.oci.image.layer.v1.tar")
    key = Digest.of_bytes(b"op")
    record = CacheRecord(key=key, roots=(blob,), metadata=(("diff_id", "x"),), created="now")
    store.cache.put(record)
    assert store.cache.get(key) == record
    assert record.get("diff_id") == "x"
    assert list(store.cache.records()) == [record]
    assert store.cache.delete(key)
    assert store.cache.get(key) is None


def test_record_needs_committed_blobs(store: Store) -> None:
    ghost = Descriptor(media_type="x", digest=Digest.of_bytes(b"ghost"), size=5)
    with pytest.raises(StoreError, match="is not in the store"):
        store.cache.put(CacheRecord(key=Digest.of_bytes(b"k"), roots=(ghost,)))


def test_corrupt_record_is_set_aside_as_a_miss(store: Store) -> None:
    key = Digest.of_bytes(b"k")
    path = store.root / "cache" / f"{key.hex}.json"
    path.write_bytes(b'{"key": "sha256:trunc')
    warnings: list[str] = []
    assert store.cache.get(key, on_corrupt=warnings.append) is None
    assert not path.exists()
    assert path.with_name(path.name + ".bak").exists()
    assert len(warnings) == 1
    assert f"cache record {path} is corrupt" in warnings[0]
    assert f"set aside as {key.hex}.json.bak" in warnings[0]


def test_record_whose_blob_vanished_is_a_miss(store: Store) -> None:
    blob = store.put_bytes(b"layer")
    key = Digest.of_bytes(b"k")
    store.cache.put(CacheRecord(key=key, roots=(blob,)))
    (store.root / "blobs" / "sha256" / blob.digest.hex).unlink()
    assert store.cache.get(key) is None
