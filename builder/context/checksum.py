"""Content+metadata digests of source files, with a persistent stat cache.

A file's *entry digest* is a tarsum-v1 style digest: the tar header fields BuildKit's
``cache/contenthash`` hashes (name, mode, uid, gid, size, type, link name, device numbers,
xattrs, but not the mtime), followed by the sha256 of the content for regular files.

Hashing content is the expensive part, so ``ContentCache`` remembers ``(dev, ino) -> (size,
mtime_ns, ctime_ns, content sha256)`` in an SQLite file under a directory the caller chooses
(the store's state directory). A file whose stat still matches is not opened again. An entry
recorded less than ``RACY_NS`` after the file last changed is not trusted (the "racy git"
problem: a second write within the filesystem's timestamp granularity keeps the same times),
so such a file is hashed again until it has aged.

``seed`` takes a digest computed elsewhere from the same read as a copy (COPY hashes the
context while copying it when the content is not known yet, ``builder.engine.scheduler``): it
is trusted for the rest of the process whatever its age, since the copy holds exactly the
bytes that were hashed, and persisted like any other entry (so later builds apply the racy
rule to it).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from builder.digest import Digest
from builder.errors import ContextError

if TYPE_CHECKING:
    import sqlite3
    from types import ModuleType


def _sqlite3() -> ModuleType:
    """The sqlite3 module, loaded by the first cache that opens its database (a context read
    only for its ``.dockerignore``, as ``pybuild check`` and the no-op check read it, never
    loads it)."""
    import sqlite3  # lazy: see above

    return sqlite3


RACY_NS: Final = 2_000_000_000
CACHE_FILE: Final = "context-checksums.sqlite3"
_CHUNK: Final = 1 << 20
_SCHEMA: Final = (
    "CREATE TABLE IF NOT EXISTS content ("
    " key TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER,"
    " digest TEXT, recorded_ns INTEGER)"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Record:
    size: int
    mtime_ns: int
    ctime_ns: int
    digest: str
    recorded_ns: int

    def valid_for(self, st: os.stat_result) -> bool:
        return (
            self.size == st.st_size
            and self.mtime_ns == st.st_mtime_ns
            and self.ctime_ns == st.st_ctime_ns
            and max(self.mtime_ns, self.ctime_ns) + RACY_NS <= self.recorded_ns
        )


def _key(st: os.stat_result) -> str:
    return f"{st.st_dev}:{st.st_ino}"


class ContentCache:
    """sha256 of file contents keyed by inode and stat; persistent when given a directory.

    Thread-safe. ``flush`` writes new entries; ``close`` flushes and closes the database.
    ``clock`` (nanoseconds) exists so tests can decide which entries count as racy.
    """

    def __init__(
        self, directory: Path | None = None, *, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self._directory = directory
        self._clock = clock
        self._lock = threading.Lock()
        self._memory: dict[str, _Record] = {}
        self._pending: dict[str, _Record] = {}
        self._seeded: dict[str, _Record] = {}  # read by this process: trusted though racy
        self._db: sqlite3.Connection | None = None
        self._db_failed = directory is None
        self.hashed = 0  # files whose content was read (for diagnostics and tests)

    def _connection(self) -> sqlite3.Connection | None:
        if self._db is not None or self._db_failed:
            return self._db
        assert self._directory is not None
        sqlite = _sqlite3()
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            db: sqlite3.Connection = sqlite.connect(
                self._directory / CACHE_FILE, timeout=10, check_same_thread=False
            )
            db.execute(_SCHEMA)
        except (OSError, sqlite.Error):
            # A cache that cannot be opened only costs speed, never the build.
            self._db_failed = True
            return None
        self._db = db
        return db

    def _lookup(self, key: str) -> _Record | None:
        rec = self._memory.get(key)
        if rec is not None:
            return rec
        db = self._connection()
        if db is None:
            return None
        try:
            row = db.execute(
                "SELECT size, mtime_ns, ctime_ns, digest, recorded_ns FROM content WHERE key = ?",
                (key,),
            ).fetchone()
        except _sqlite3().Error:
            return None
        if row is None:
            return None
        rec = _Record(
            size=row[0], mtime_ns=row[1], ctime_ns=row[2], digest=row[3], recorded_ns=row[4]
        )
        self._memory[key] = rec
        return rec

    def cached(self, st: os.stat_result) -> str | None:
        """The content sha256 (hex) for a file with this lstat, if known and trusted."""
        key = _key(st)
        with self._lock:
            seeded = self._seeded.get(key)
            rec = self._lookup(key) if seeded is None else None
        if seeded is not None:
            if (seeded.size, seeded.mtime_ns, seeded.ctime_ns) == (
                st.st_size,
                st.st_mtime_ns,
                st.st_ctime_ns,
            ):
                return seeded.digest
            return None
        if rec is not None and rec.valid_for(st):
            return rec.digest
        return None

    def seed(self, st: os.stat_result, digest: str, size: int) -> None:
        """Record ``digest`` (sha256 hex of ``size`` bytes) read from the file whose fstat,
        taken before the read, is ``st``; ignored when the file did not have ``size`` bytes."""
        self._record(st, digest, size, seeded=True)

    def _record(self, st: os.stat_result, digest: str, size: int, *, seeded: bool) -> None:
        rec = _Record(
            size=size,
            mtime_ns=st.st_mtime_ns,
            ctime_ns=st.st_ctime_ns,
            digest=digest,
            recorded_ns=self._clock(),
        )
        key = _key(st)
        with self._lock:
            self.hashed += 1
            if size == st.st_size:
                if seeded:
                    self._seeded[key] = rec
                self._memory[key] = rec
                self._pending[key] = rec

    def content_digest(self, st: os.stat_result, opener: Callable[[], int]) -> str:
        """sha256 hex of a regular file's content; ``opener`` gives a read fd when needed.

        ``st`` is the lstat the caller walked with; the opened file must be that same inode.
        """
        hit = self.cached(st)
        if hit is not None:
            return hit
        fd = opener()
        try:
            fst = os.fstat(fd)
            if (fst.st_dev, fst.st_ino) != (st.st_dev, st.st_ino) or not stat.S_ISREG(fst.st_mode):
                raise ContextError("file changed while the build context was being read")
            h = hashlib.sha256()
            size = 0
            while chunk := os.read(fd, _CHUNK):
                h.update(chunk)
                size += len(chunk)
        finally:
            os.close(fd)
        digest = h.hexdigest()
        self._record(fst, digest, size, seeded=False)
        return digest

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
            db = self._connection() if pending else None
            if db is None:
                return
            rows = [
                (k, r.size, r.mtime_ns, r.ctime_ns, r.digest, r.recorded_ns)
                for k, r in pending.items()
            ]
            try:
                with db:
                    db.executemany("INSERT OR REPLACE INTO content VALUES (?, ?, ?, ?, ?, ?)", rows)
            except _sqlite3().Error:
                return

    def close(self) -> None:
        self.flush()
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(_sqlite3().Error):
                    self._db.close()
                self._db = None
                self._db_failed = True


# --- entry digests -----------------------------------------------------------------------------

_TYPEFLAG: Final = {
    stat.S_IFREG: "0",
    stat.S_IFLNK: "2",
    stat.S_IFCHR: "3",
    stat.S_IFBLK: "4",
    stat.S_IFDIR: "5",
    stat.S_IFIFO: "6",
}


def tar_mode(st_mode: int) -> int:
    """The tar header mode of a file: permission bits plus setuid/setgid/sticky."""
    if stat.S_ISLNK(st_mode):
        return 0o777
    return stat.S_IMODE(st_mode)


def hashed_xattrs(xattrs: tuple[tuple[str, bytes], ...]) -> tuple[tuple[str, bytes], ...]:
    """The xattrs that count (tarsum v1: ``security.capability``, no other security/system)."""
    return tuple(
        sorted(
            (k, v)
            for k, v in xattrs
            if k == "security.capability" or not k.startswith(("security.", "system."))
        )
    )


def entry_digest(
    *,
    name: str,
    st: os.stat_result,
    uid: int,
    gid: int,
    linkname: str = "",
    xattrs: tuple[tuple[str, bytes], ...] = (),
    content: str | None = None,
) -> Digest:
    """Digest of one entry: tarsum-v1 header fields (no mtime), then the content sha256."""
    mode = st.st_mode
    fmt = stat.S_IFMT(mode)
    size = st.st_size if fmt == stat.S_IFREG else 0
    major = minor = 0
    if fmt in (stat.S_IFCHR, stat.S_IFBLK):
        major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    header = (
        f"name{name}\x00mode{tar_mode(mode)}\x00uid{uid}\x00gid{gid}\x00size{size}\x00"
        f"typeflag{_TYPEFLAG.get(fmt, '?')}\x00linkname{linkname}\x00uname\x00gname\x00"
        f"devmajor{major}\x00devminor{minor}\x00"
    )
    h = hashlib.sha256(header.encode("utf-8", "surrogateescape"))
    for key, raw in hashed_xattrs(xattrs):
        encoded = key.encode("utf-8", "surrogateescape")
        h.update(b"xattr%d:%s%d:" % (len(encoded), encoded, len(raw)))
        h.update(raw)
    if content is not None:
        h.update(b"content:" + content.encode())
    return Digest.from_hex(h.hexdigest())
