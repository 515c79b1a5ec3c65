"""flock helpers: shared locks coexist, exclusive waits time out naming the holder."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from builder.errors import StoreError
from builder.store import locks
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


def test_a_locked_dir_is_live_until_its_fd_closes(tmp_path: Path) -> None:
    path, fd = locks.locked_dir(tmp_path, "pybuild-run-")
    assert path.parent == tmp_path
    assert path.name.startswith("pybuild-run-")
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no .new-* left
    assert locks.abandoned(path) is None  # held
    os.close(fd)
    taken = locks.abandoned(path)
    assert taken is not None
    os.close(taken)


def test_a_new_dir_is_abandoned_only_after_its_grace(tmp_path: Path) -> None:
    young = tmp_path / ".new-abc"
    young.mkdir()
    assert locks.abandoned(young) is None  # its maker may be about to lock it
    old = time.time() - locks.NEW_GRACE_SECONDS - 5
    os.utime(young, (old, old))
    taken = locks.abandoned(young)
    assert taken is not None
    os.close(taken)
    assert locks.abandoned(tmp_path / "absent") is None
