"""The directories of ``RUN --mount=type=cache``, under the store's ``cachemounts/``.

A cache is named by the sha256 of its namespace, its ``id`` and, for ``from=``, the identity of
the seed (as BuildKit keys a cache on its base ref): an id is never a path, so ``id=../../x``
stays inside the area. Each directory ``NAME`` has a lock file ``NAME.lock``, flocked for as
long as a step uses it:

- ``shared`` (default): a shared lock; any number of steps use the directory at once;
- ``locked``: an exclusive lock; a second step (in this build or another) waits for the first;
- ``private``: an exclusive lock taken without waiting on ``NAME``, else ``NAME-1``,
  ``NAME-2``...: each concurrent user gets a directory of its own.

A directory is created (and seeded from ``from=``/``source=``) under the exclusive lock, in
``NAME.tmp`` renamed into place, so no user sees it half made. :func:`prune` removes every
directory no build holds; lock files are removed too, which is why a locker checks, after its
flock, that the lock file it holds is still the one at its path.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from builder.store.fsutil import tree_size
from builder.syntax import ir

__all__ = ["PruneReport", "cache_name", "prune", "use"]

_LOCK: Final = ".lock"
_TMP: Final = ".tmp"

Create = Callable[[Path], None]  # makes the new directory at the given path


def cache_name(namespace: str, cache_id: str, seed: str = "") -> str:
    """The directory name of a cache: a hash, whatever the id holds."""
    text = f"{namespace}\0{cache_id}" + (f"\0{seed}" if seed else "")
    return hashlib.sha256(text.encode()).hexdigest()


def _lock(path: Path, mode: int) -> int | None:
    """An fd of ``path`` flocked with ``mode`` (None: ``LOCK_NB`` and held elsewhere), checked
    to still be the file at ``path`` (a prune may have removed it meanwhile)."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, mode)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            same = os.stat(path).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def _make(base: Path, name: str, create: Create) -> None:
    """Create ``base/name`` (its lock held exclusively) through ``name.tmp``."""
    tmp = base / (name + _TMP)
    if os.path.lexists(tmp):
        shutil.rmtree(tmp)  # a creator that died; nobody else creates without the lock
    create(tmp)
    os.rename(tmp, base / name)


@contextlib.contextmanager
def use(base: Path, name: str, sharing: ir.ShareMode, create: Create) -> Iterator[Path]:
    """The cache directory ``name`` under ``base``, locked for ``sharing`` until exit; made
    with ``create`` when missing."""
    base.mkdir(parents=True, exist_ok=True)
    index = 0
    while True:
        entry = name if index == 0 else f"{name}-{index}"
        directory = base / entry
        lock = base / (entry + _LOCK)
        match sharing:
            case ir.ShareMode.PRIVATE:
                fd = _lock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if fd is None:
                    index += 1  # in use: the next instance
                    continue
            case ir.ShareMode.LOCKED:
                fd = _lock(lock, fcntl.LOCK_EX)
            case ir.ShareMode.SHARED:
                fd = _lock(lock, fcntl.LOCK_SH)
                if fd is not None and not directory.is_dir():
                    os.close(fd)  # made under the exclusive lock, then used under a shared one
                    fd = _lock(lock, fcntl.LOCK_EX)
                    assert fd is not None
                    try:
                        if not directory.is_dir():
                            _make(base, entry, create)
                    finally:
                        os.close(fd)
                    continue
        assert fd is not None
        try:
            if not directory.is_dir():
                _make(base, entry, create)
            yield directory
        finally:
            os.close(fd)
        return


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneReport:
    removed: tuple[str, ...]  # directory names
    busy: tuple[str, ...]  # held by a running build: kept
    reclaimed_bytes: int


def prune(base: Path) -> PruneReport:
    """Remove every cache directory under ``base`` that no build holds (never waits)."""
    if not base.is_dir():
        return PruneReport(removed=(), busy=(), reclaimed_bytes=0)
    entries = set()
    for child in base.iterdir():
        name = child.name
        for suffix in (_LOCK, _TMP):
            name = name.removesuffix(suffix)
        entries.add(name)
    removed: list[str] = []
    busy: list[str] = []
    reclaimed = 0
    for entry in sorted(entries):
        lock = base / (entry + _LOCK)
        fd = _lock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        if fd is None:
            busy.append(entry)
            continue
        try:
            if (base / entry).is_dir():
                removed.append(entry)
            for path in (base / entry, base / (entry + _TMP)):
                if path.is_dir() and not path.is_symlink():
                    reclaimed += tree_size(path)
                    shutil.rmtree(path)
                elif os.path.lexists(path):
                    path.unlink()
            lock.unlink()  # still held: a locker that opened it sees it is gone and retries
        finally:
            os.close(fd)
    return PruneReport(removed=tuple(removed), busy=tuple(busy), reclaimed_bytes=reclaimed)
