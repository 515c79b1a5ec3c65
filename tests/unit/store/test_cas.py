"""Blob commit protocol: the store hashes, verifies, and keeps nothing on mismatch."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest

from builder.digest import Digest
from builder.errors import DigestMismatchError, StoreError
from builder.oci.types import Descriptor
from builder.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store")


def _blobs(store: Store) -> list[str]:
    return sorted(p.name for p in (store.root / "blobs" / "sha256").iterdir())


def _ingest(store: Store) -> list[str]:
    return sorted(p.name for p in (store.root / "ingest").iterdir())


def test_put_and_open_round_trip(store: Store) -> None:
    data = os.urandom(3 << 20)
    desc = store.put_blob(io.BytesIO(data), media_type="application/x-test")
    assert desc.digest == Digest.of_bytes(data)
    assert desc.size == len(data)
    assert desc.media_type == "application/x-test"
    with store.open_blob(desc) as reader:
        assert reader.read() == data
    path = store.root / "blobs" / "sha256" / desc.digest.hex
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert _ingest(store) == []


def test_caller_digest_is_never_trusted(store: Store) -> None:
    data = b"real content"
    lie = Descriptor(media_type="x", digest=Digest.of_bytes(b"other"), size=len(data))
    with pytest.raises(DigestMismatchError, match="nothing was stored") as info:
        store.put_blob(io.BytesIO(data), expected=lie)
    assert info.value.actual == str(Digest.of_bytes(data))
    assert _blobs(store) == []
    assert _ingest(store) == []


@pytest.mark.parametrize("delta", [-1, 1])
def test_size_mismatch_keeps_nothing(store: Store, delta: int) -> None:
    data = b"0123456789"
    desc = Descriptor(media_type="x", digest=Digest.of_bytes(data), size=len(data) + delta)
    with pytest.raises(DigestMismatchError, match="bytes"):
        store.put_blob(io.BytesIO(data), expected=desc)
    assert _blobs(store) == []
    assert _ingest(store) == []


def test_expected_descriptor_is_returned_with_its_annotations(store: Store) -> None:
    data = b"layer"
    desc = Descriptor(
        media_type="x", digest=Digest.of_bytes(data), size=5, annotations=(("k", "v"),)
    )
    assert store.put_blob(io.BytesIO(data), expected=desc) == desc


def test_existing_blob_is_success(store: Store) -> None:
    a = store.put_bytes(b"same")
    b = store.put_bytes(b"same")
    assert a == b
    assert _blobs(store) == [a.digest.hex]


def test_flipped_byte_is_detected_and_quarantined(store: Store) -> None:
    data = b"important bytes" * 100
    desc = store.put_bytes(data)
    path = store.root / "blobs" / "sha256" / desc.digest.hex
    path.chmod(0o644)
    raw = bytearray(path.read_bytes())
    raw[17] ^= 0x01
    path.write_bytes(bytes(raw))
    with store.open_blob(desc) as reader, pytest.raises(DigestMismatchError, match="blob corrupt"):
        reader.read()
    assert not path.exists()
    assert len(list((store.root / "corrupt").iterdir())) == 1
    assert not store.has_blob(desc.digest)


def test_missing_blob_is_a_store_error(store: Store) -> None:
    desc = Descriptor(media_type="x", digest=Digest.of_bytes(b"nope"), size=4)
    with pytest.raises(StoreError, match="missing from the store"):
        store.open_blob(desc)


def test_read_blob_enforces_limit(store: Store) -> None:
    desc = store.put_bytes(b"x" * 100)
    with pytest.raises(StoreError, match="exceeds the 10-byte limit"):
        store.read_blob(desc, limit=10)


def test_blob_writer_streams_and_aborts_on_error(store: Store) -> None:
    with store.lease(), store.blob_writer(media_type="m") as w:
        w.write(b"abc")
        w.write(memoryview(b"def"))
    assert w.descriptor is not None
    assert w.descriptor.digest == Digest.of_bytes(b"abcdef")

    def fail() -> None:
        with store.blob_writer() as w2:
            w2.write(b"partial")
            raise RuntimeError("producer died")

    with pytest.raises(RuntimeError):
        fail()
    assert _ingest(store) == []
    assert _blobs(store) == [Digest.of_bytes(b"abcdef").hex]


def test_killed_writer_leaves_only_ingest_which_open_reaps(store: Store) -> None:
    """A writer killed before commit leaves an unlocked temp file; the next open removes it at
    once (a live writer holds its file's flock from before the file has its name), while a
    live writer's file stays. A ``.new-*`` file (killed between creation and lock) goes once
    older than the grace period."""
    stale = store.root / "ingest" / "deadbeef.tmp"
    stale.write_bytes(b"half a blob")
    unlocked_young = store.root / "ingest" / ".new-young"
    unlocked_young.write_bytes(b"")
    unlocked_old = store.root / "ingest" / ".new-old"
    unlocked_old.write_bytes(b"")
    os.utime(unlocked_old, (0, 0))
    with store.cas.writer() as live:
        live.write(b"being written")
        Store.open(store.root)
        assert _ingest(store) == sorted([".new-young", live.path.name])
        assert live.path.name.endswith(".tmp")
    assert _ingest(store) == [".new-young"]
