"""Running out of disk space: one error line, and atomic_write keeps the old file (the real
full disk is tests/adversarial/test_disk_full_cases.py)."""

from __future__ import annotations

import errno
import fcntl
import os
import sys
from pathlib import Path

import pytest

from builder.errors import StoreError
from builder.store import Store, fsutil
from builder.store.fsutil import atomic_write, is_full, no_space_during, tree_size


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_no_space_becomes_one_line_naming_what_was_done(code: int) -> None:
    with pytest.raises(StoreError) as caught, no_space_during("RUN dd if=/dev/zero of=/big"):
        raise OSError(code, os.strerror(code))
    assert caught.value.message == "no space left on device during RUN dd if=/dev/zero of=/big"


def test_other_os_errors_pass_unchanged() -> None:
    with pytest.raises(PermissionError), no_space_during("COPY a /b"):
        raise PermissionError(errno.EACCES, "Permission denied")


def test_atomic_write_that_fails_keeps_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "index.json"
    target.write_bytes(b'{"old": true}')

    def full(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        atomic_write(target, b'{"new": true}')
    monkeypatch.undo()
    assert target.read_bytes() == b'{"old": true}'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.json"]


def test_a_roomy_filesystem_is_not_full(tmp_path: Path) -> None:
    assert not is_full(tmp_path)


def test_tree_size_counts_files_and_links_once_per_inode(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"x" * 100)
    os.link(tmp_path / "d" / "a", tmp_path / "hard")  # the same inode: counted once
    (tmp_path / "b").write_bytes(b"y" * 7)
    os.symlink("d/a", tmp_path / "link")  # the link itself: its target's length
    assert tree_size(tmp_path) == 100 + 7 + len("d/a")
    assert tree_size(tmp_path / "missing") == 0


def _inode_flags(path: Path) -> int | None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        buf = bytearray(4)
        fcntl.ioctl(fd, fsutil.FS_IOC_GETFLAGS, buf)
        return int.from_bytes(buf, sys.byteorder)
    except OSError:
        return None  # a filesystem without inode flags (tmpfs before 6.0, overlayfs...)
    finally:
        os.close(fd)


def test_store_open_marks_the_snapshot_and_tmp_dirs_top_directories(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "store")
    for name in ("snapshots", "tmp"):
        flags = _inode_flags(store.root / name)
        if flags is None:  # nothing to mark: the call says so and changes nothing
            assert not fsutil.spread_new_directories(store.root / name)
        else:
            assert flags & fsutil.FS_TOPDIR_FL, name
    blobs = _inode_flags(store.root / "blobs")
    assert blobs is None or not blobs & fsutil.FS_TOPDIR_FL  # only where big trees come and go


def test_spreading_keeps_the_other_flags_and_is_idempotent(tmp_path: Path) -> None:
    d = tmp_path / "d"
    d.mkdir()
    before = _inode_flags(d)
    if before is None:
        assert not fsutil.spread_new_directories(d)
        return
    assert fsutil.spread_new_directories(d)
    assert fsutil.spread_new_directories(d)
    assert _inode_flags(d) == before | fsutil.FS_TOPDIR_FL
    assert not fsutil.spread_new_directories(tmp_path / "missing")
