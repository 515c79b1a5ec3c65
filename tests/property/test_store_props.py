"""Store properties: put/open round-trips; any flipped byte, cut or extension is detected."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builder.errors import DigestMismatchError
from builder.store import Store
from builder.store.fsck import fsck


@settings(max_examples=40, deadline=None)
@given(blobs=st.lists(st.binary(max_size=5000), min_size=1, max_size=5))
def test_put_open_round_trip(blobs: list[bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp))
        descs = [store.put_blob(io.BytesIO(b)) for b in blobs]
        for blob, desc in zip(blobs, descs, strict=True):
            with store.open_blob(desc) as reader:
                assert reader.read() == blob
        assert fsck(store).ok


@settings(max_examples=40, deadline=None)
@given(
    blob=st.binary(min_size=1, max_size=4000),
    where=st.floats(0, 1, exclude_max=True),
    bit=st.integers(0, 7),
    mode=st.sampled_from(["flip", "cut", "extend"]),
)
def test_any_tampering_is_detected(blob: bytes, where: float, bit: int, mode: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp))
        desc = store.put_bytes(blob)
        path = store.root / "blobs" / "sha256" / desc.digest.hex
        path.chmod(0o644)
        data = bytearray(blob)
        pos = int(where * len(data))
        if mode == "flip":
            data[pos] ^= 1 << bit
        elif mode == "cut":
            del data[pos:]
        else:
            data.insert(pos, bit)
        path.write_bytes(bytes(data))
        assert not fsck(store).ok
        with store.open_blob(desc) as reader, pytest.raises(DigestMismatchError):
            reader.read()
