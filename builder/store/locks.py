"""``fcntl.flock`` locks with timeouts and a message naming the holder.

The kernel drops a flock when its process dies, so liveness never depends on PIDs in files.
Shared = builds/writers, exclusive = GC/prune; waits poll with a deadline.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Final

from builder.errors import StoreError

DEFAULT_TIMEOUT: Final = 60.0
_POLL: Final = 0.05


def _holders(path: Path) -> str:
    """PIDs holding a lock on ``path``, from ``/proc/locks`` (best effort, for messages)."""
    try:
        st = path.stat()
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "another process"
    want = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    pids = sorted({line.split()[4] for line in lines if len(line.split()) > 5 and want in line})
    return f"pid {', '.join(pids)}" if pids else "another process"


@contextlib.contextmanager
def flocked(path: Path, *, exclusive: bool, timeout: float = DEFAULT_TIMEOUT) -> Iterator[int]:
    """Hold a shared or exclusive flock on ``path`` (created if needed); yields the fd."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    kind = "exclusive" if exclusive else "shared"
                    raise StoreError(
                        f"timed out after {timeout:g}s waiting for the {kind} lock {path}"
                        f" (held by {_holders(path)})"
                    ) from None
                time.sleep(_POLL)
        yield fd
    finally:
        os.close(fd)


def try_lock_exclusive(fd: int) -> bool:
    """Take an exclusive flock without waiting; False if someone holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


NEW_PREFIX: Final = ".new-"  # a locked directory or file before its rename (see locked_dir)
NEW_GRACE_SECONDS: Final = 60.0


def _locked_new(
    parent: Path, final_name: Callable[[str], str], *, directory: bool
) -> tuple[Path, int]:
    """Make ``parent/.new-XXXX``, flock it (exclusive) and rename it to ``final_name(XXXX)``."""
    # lazy: tempfile only where directories and files are made
    import tempfile

    if directory:
        made = Path(tempfile.mkdtemp(prefix=NEW_PREFIX, dir=parent))
        fd = os.open(made, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    else:
        # O_EXCL, 0600, O_NOFOLLOW: mkstemp's guarantees
        fd, name = tempfile.mkstemp(prefix=NEW_PREFIX, dir=parent)
        made = Path(name)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        final = parent / final_name(made.name.removeprefix(NEW_PREFIX))
        os.rename(made, final)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):
            (os.rmdir if directory else os.unlink)(made)
        raise
    return final, fd


def locked_dir(parent: Path, prefix: str) -> tuple[Path, int]:
    """A new empty directory ``parent/<prefix>XXXX``, flocked (exclusive) through the returned
    fd for as long as it stays open: a reaper that gets the lock knows its owner is gone.

    The directory appears under its final name only once it is locked (made as ``.new-*``,
    locked, renamed), so a reaper never takes a live one for abandoned; a ``.new-*`` left by a
    crash in between is old after ``NEW_GRACE_SECONDS``."""
    return _locked_new(parent, lambda name: prefix + name, directory=True)


def locked_file(parent: Path, suffix: str) -> tuple[Path, int]:
    """A new empty file ``parent/XXXX<suffix>`` (mode 0600), opened for writing and flocked
    through the returned fd, with :func:`locked_dir`'s guarantee: under its final name it is
    always locked while its owner lives (the CAS's ingest files)."""
    return _locked_new(parent, lambda name: name + suffix, directory=False)


def abandoned(path: Path) -> int | None:
    """An fd holding the exclusive flock of directory ``path`` when nobody else holds it (its
    owner died), else None; a ``.new-*`` name counts only once older than its grace."""
    try:
        young = time.time() - path.lstat().st_mtime < NEW_GRACE_SECONDS
        if path.name.startswith(NEW_PREFIX) and young:
            return None
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    if try_lock_exclusive(fd):
        return fd
    os.close(fd)
    return None
