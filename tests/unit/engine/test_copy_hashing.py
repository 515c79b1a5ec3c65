"""``copy_fd_hashing``: the one read of a COPY that also gives the content digest."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from builder.engine.copy_dest import copy_fd_hashing


@pytest.mark.parametrize("size", [0, 1, 10_240, (1 << 20) - 1, 1 << 20, (1 << 20) + 1, 3 << 20])
def test_copies_and_hashes_every_byte(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    (tmp_path / "src").write_bytes(data)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        digest, copied = copy_fd_hashing(src, dst, size)
    finally:
        os.close(src)
        os.close(dst)
    assert (digest, copied) == (hashlib.sha256(data).hexdigest(), size)
    assert (tmp_path / "dst").read_bytes() == data


def test_a_file_longer_than_expected_is_copied_whole(tmp_path: Path) -> None:
    data = b"x" * 5000
    (tmp_path / "src").write_bytes(data)
    src = os.open(tmp_path / "src", os.O_RDONLY)
    dst = os.open(tmp_path / "dst", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        digest, copied = copy_fd_hashing(src, dst, 100)  # it grew after its stat
    finally:
        os.close(src)
        os.close(dst)
    assert (digest, copied) == (hashlib.sha256(data).hexdigest(), 5000)
    assert (tmp_path / "dst").read_bytes() == data
