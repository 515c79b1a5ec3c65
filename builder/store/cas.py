"""Content-addressed blob store: the store computes every digest itself while writing.

Commit protocol (S2): ``O_EXCL`` 0600 temp file in ``ingest/`` (flocked before it gets its
name, and while in use: an unlocked one is abandoned), stream while hashing and counting (abort
past the expected size), ``fchmod 0444`` + ``fsync``, compare size then digest, ``link`` to
``blobs/sha256/<hex>`` (an existing blob wins: success), unlink the temp file, fsync the
directory. Reads go through ``VerifyingReader``; a mismatch moves the blob
to ``corrupt/`` (S8).

Durability is decided here, per blob: one ``fsync`` of the blob and one of its directory, not a
``syncfs`` per layer or per build. A cache record or index entry may name a blob only once the
blob is durable (after a crash no record may point at a torn blob), so a sync deferred to the end
of a layer or build would have to hold back every record until then. And ``syncfs`` flushes the
whole filesystem: the layer directories a build writes, which are deliberately never synced
(``snapshot.layerdirs`` marks them with the boot ID and extracts them again from their fsynced
blobs after a crash), and every other process's dirty data, so its cost grows with writes that
are not ours (measured on the shared 2-core machine: 16-64 ms per ``syncfs`` against 22-37 ms
per ``fsync`` of a 1 MiB blob), where an ``fsync`` waits for one journal commit. So the bulk
data (a big COPY's 10,000 files, a RUN's upper directory) is never synced file by file, and each
blob, cache record and index write costs its own two fsyncs.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Final

from builder.digest import CHUNK_SIZE, Digest, Hasher, VerifyingReader
from builder.errors import DigestMismatchError, StoreError
from builder.oci.descriptor import Descriptor
from builder.store import paths
from builder.store.fsutil import fsync_dir
from builder.store.locks import NEW_GRACE_SECONDS, NEW_PREFIX, locked_file, try_lock_exclusive

INGEST_SUFFIX: Final = ".tmp"


class BlobWriter:
    """A blob being written; ``commit`` verifies and publishes it, ``abort`` discards it."""

    def __init__(
        self,
        cas: ContentStore,
        *,
        media_type: str,
        expected_digest: Digest | None,
        expected_size: int | None,
    ) -> None:
        self._cas = cas
        self.media_type = media_type
        self._expected_digest = expected_digest
        self._expected_size = expected_size
        self._hasher = Hasher()
        self.path, self._fd = locked_file(cas.ingest_dir, INGEST_SUFFIX)
        self.descriptor: Descriptor | None = None

    @property
    def size(self) -> int:
        return self._hasher.size

    @property
    def hasher(self) -> Hasher:
        """The running hash of what was written (read it, never feed it)."""
        return self._hasher

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data)
        if self._expected_size is not None and self._hasher.size + len(view) > self._expected_size:
            raise self._mismatch(
                f"more than the expected {self._expected_size} bytes",
                f"size>{self._expected_size}",
            )
        self._hasher.update(view)
        remaining = view
        while remaining:
            remaining = remaining[os.write(self._fd, remaining) :]
        return len(view)

    def flush(self) -> None:
        """Data is flushed by ``commit``; present so the writer can stand in for a file."""

    def _mismatch(self, detail: str, actual: str) -> DigestMismatchError:
        self.abort()
        expected = self._expected_digest
        name = str(expected) if expected is not None else "blob"
        return DigestMismatchError(
            f"blob {name}: {detail}; nothing was stored",
            expected=str(expected) if expected is not None else f"size={self._expected_size}",
            actual=actual,
        )

    def commit(self) -> Descriptor:
        if self._fd < 0:
            raise StoreError("blob writer already closed")
        if self._expected_size is not None and self._hasher.size != self._expected_size:
            raise self._mismatch(
                f"got {self._hasher.size} bytes, expected {self._expected_size}",
                f"size={self._hasher.size}",
            )
        digest = self._hasher.digest()
        if self._expected_digest is not None and digest != self._expected_digest:
            raise self._mismatch(f"content hashes to {digest}", str(digest))
        try:
            final = self._cas.blob_path(digest)
            # An existing blob has identical content: that is success (S2 step 4), and there is
            # nothing to make durable.
            if not final.is_file():
                os.fchmod(self._fd, 0o444)
                os.fsync(self._fd)
                with contextlib.suppress(FileExistsError):
                    os.link(self.path, final)
                fsync_dir(final.parent)
        except OSError as exc:
            self.abort()
            raise StoreError(f"cannot commit blob {digest}: {exc.strerror}") from None
        self._close_and_unlink()
        self.descriptor = Descriptor(
            media_type=self.media_type, digest=digest, size=self._hasher.size
        )
        return self.descriptor

    def _close_and_unlink(self) -> None:
        if self._fd >= 0:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = -1

    def abort(self) -> None:
        self._close_and_unlink()

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if exc_type is not None:
            self.abort()
        elif self._fd >= 0:
            self.commit()


class ContentStore:
    """``blobs/sha256/<hex>`` plus ``ingest/`` and ``corrupt/`` under one root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs_dir = paths.blobs_dir(root)
        self.ingest_dir = root / paths.INGEST
        self.corrupt_dir = root / paths.CORRUPT

    def blob_path(self, digest: Digest) -> Path:
        # ``Digest`` is validated on construction: the hex part is 64 [0-9a-f], never a path.
        return self.blobs_dir / digest.hex

    def has(self, digest: Digest) -> bool:
        return self.blob_path(digest).is_file()

    def size_of(self, digest: Digest) -> int | None:
        try:
            return self.blob_path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def writer(
        self,
        *,
        media_type: str = "application/octet-stream",
        expected: Descriptor | None = None,
    ) -> BlobWriter:
        return BlobWriter(
            self,
            media_type=expected.media_type if expected is not None else media_type,
            expected_digest=expected.digest if expected is not None else None,
            expected_size=expected.size if expected is not None else None,
        )

    def put(
        self,
        stream: BinaryIO,
        *,
        media_type: str = "application/octet-stream",
        expected: Descriptor | None = None,
    ) -> Descriptor:
        """Stream into the store; with ``expected`` a size or digest mismatch keeps nothing."""
        with self.writer(media_type=media_type, expected=expected) as w:
            while chunk := stream.read(CHUNK_SIZE):
                w.write(chunk)
            desc = w.commit()
        if expected is not None:
            return expected
        return desc

    def put_bytes(
        self,
        data: bytes,
        *,
        media_type: str = "application/octet-stream",
        expected: Descriptor | None = None,
    ) -> Descriptor:
        digest = Digest.of_bytes(data)
        if (expected is None or (expected.digest == digest and expected.size == len(data))) and (
            self.has(digest)
        ):
            # Already stored (blobs are content-addressed and were verified when written): no
            # temp file, no fsync. A mismatch with ``expected`` still goes the writer's way.
            if expected is not None:
                return expected
            return Descriptor(media_type=media_type, digest=digest, size=len(data))
        with self.writer(media_type=media_type, expected=expected) as w:
            w.write(data)
            desc = w.commit()
        return expected if expected is not None else desc

    def open(self, desc: Descriptor) -> VerifyingReader:
        """A reader that raises ``DigestMismatchError`` (and quarantines) on bad content."""
        path = self.blob_path(desc.digest)
        try:
            raw = path.open("rb")
        except FileNotFoundError:
            raise StoreError(f"blob {desc.digest} is missing from the store") from None
        return VerifyingReader(
            raw,
            expected=desc.digest,
            size=desc.size,
            name=f"blob {desc.digest}",
            on_mismatch=lambda: self.quarantine(desc.digest),
        )

    def read_bytes(self, desc: Descriptor, *, limit: int) -> bytes:
        if desc.size > limit:
            raise StoreError(
                f"blob {desc.digest}: {desc.size} bytes exceeds the {limit}-byte limit"
            )
        with self.open(desc) as reader:
            return reader.read()

    def verify(self, digest: Digest) -> bool:
        """Does the blob's content hash to its name? (False when missing.)"""
        path = self.blob_path(digest)
        try:
            with path.open("rb") as f:
                h = Hasher()
                while chunk := f.read(CHUNK_SIZE):
                    h.update(chunk)
        except FileNotFoundError:
            return False
        return h.digest() == digest

    def quarantine(self, digest: Digest) -> None:
        """Move a corrupt blob out of ``blobs/`` so the next pull re-fetches it."""
        self.corrupt_dir.mkdir(exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            os.replace(self.blob_path(digest), self.corrupt_dir / f"{digest.hex}.{time.time_ns()}")

    def delete(self, digest: Digest) -> int:
        """Remove a blob; returns the bytes freed (0 if it was not there)."""
        path = self.blob_path(digest)
        try:
            size = path.stat().st_size
            path.unlink()
        except FileNotFoundError:
            return 0
        return size

    def digests(self) -> Iterator[tuple[Digest, Path]]:
        """Every well-named blob (stray files whose names are not digests are skipped)."""
        with os.scandir(self.blobs_dir) as it:
            for entry in it:
                try:
                    digest = Digest.from_hex(entry.name)
                except StoreError:
                    continue
                yield digest, Path(entry.path)

    def stale_ingest(self, *, grace_seconds: float = NEW_GRACE_SECONDS) -> list[Path]:
        """Ingest files whose writer is gone: unlocked (a live writer holds its file's flock
        from before the file has its final name: ``store.locks.locked_file``); a ``.new-*``
        file, left by a writer killed between its creation and its lock, only once older than
        ``grace_seconds``."""
        stale: list[Path] = []
        now = time.time()
        with os.scandir(self.ingest_dir) as it:
            entries = list(it)
        for entry in entries:
            try:
                if entry.name.startswith(NEW_PREFIX):
                    if now - entry.stat(follow_symlinks=False).st_mtime >= grace_seconds:
                        stale.append(Path(entry.path))
                    continue
                # not an in-root walk: an ingest file of the store, opened only to flock it
                fd = os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                if try_lock_exclusive(fd):
                    stale.append(Path(entry.path))
            finally:
                os.close(fd)
        return stale
