"""Atomic file replacement and directory fsync (rule I4/S3); running out of disk space."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

from builder.errors import StoreError

NO_SPACE: Final = frozenset({errno.ENOSPC, errno.EDQUOT})
FULL_BELOW: Final = 1 << 20  # a filesystem with less free space than this is full


@contextlib.contextmanager
def no_space_during(what: str) -> Iterator[None]:
    """Report running out of disk space (or quota) inside as one line:
    ``StoreError("no space left on device during <what>")``; other errors pass."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in NO_SPACE:
            raise
        raise StoreError(f"no space left on device during {what}") from None


def is_full(path: Path) -> bool:
    """Is the filesystem of ``path`` out of space or inodes (a writer there got ENOSPC)?"""
    try:
        st = os.statvfs(path)
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < FULL_BELOW or (st.f_files > 0 and st.f_favail == 0)


def fsync_dir(path: Path) -> None:
    # not an in-root walk: the store's own directory, opened to fsync it
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to a temp file beside ``path``, fsync, rename over it, fsync the dir.

    A crash (or ENOSPC) at any point leaves either the old file or the new one, never a mix;
    the temp file is removed on failure.
    """
    tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


@contextlib.contextmanager
def replacing(path: Path, *, prefix: str = ".pybuild_") -> Iterator[BinaryIO]:
    """A file to stream into, beside ``path``, renamed over it (mode 0644) when the block ends
    without error and removed otherwise: a failure never leaves a partial ``path``. Raises
    ``OSError`` (the caller names the operation)."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def tree_size(path: Path) -> int:
    """The bytes of the files and links below ``path``, each inode counted once (what a prune
    reclaims by removing the tree); entries that vanish meanwhile count nothing."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in (*dirnames, *filenames):
            try:
                st = os.lstat(os.path.join(dirpath, name))
            except OSError:
                continue
            if stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total
