"""flock helpers: shared locks coexist, exclusive waits time out naming the holder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from builder.errors import StoreError
from builder.store.locks import flocked


def test_shared_locks_coexist(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    with flocked(path, exclusive=False), flocked(path, exclusive=False, timeout=0.1):
        assert path.exists()


def test_exclusive_wait_times_out_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / "lock"
    holder = rf"exclusive lock .* \(held by pid {os.getpid()}\)"
    with (
        flocked(path, exclusive=False),
        pytest.raises(StoreError, match=holder),
        flocked(path, exclusive=True, timeout=0.1),
    ):
        pass
    with flocked(path, exclusive=True, timeout=0.1):
        pass
