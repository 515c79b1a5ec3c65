"""ADD's local archive auto-extraction.

Archives are recognised by content, as BuildKit does (``isArchivePath``): gzip, bzip2, xz or
zstd compression (or none) and then a valid first tar header. Extraction follows moby's
``Unpack`` run in a chroot at the destination: entries are cleaned, names that climb out with
``..`` and relative symlinks pointing out of the destination are refused (breakout), absolute
names land under the destination, an existing entry is replaced unless both are directories,
missing parents are created 0755 and owned by root, and ``--chown`` (when given) owns every
entry. Symlinks already in the image below the destination are followed with the destination
as their root. Everything is written through ``DestTree``, never by host path.

Extraction is bounded (SECURITY.md I3): the tar reader's entry and name limits apply, and the
decompressed bytes are capped by ``oci.tarformat.unpack_limit`` (``PYBUILD_MAX_UNPACK`` bytes
or, when unset, 1024 times the archive's size, at least 1 GiB; base-image layers get the same
cap): an archive bomb stops with "limit exceeded" instead of filling the disk.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, BinaryIO, Final, cast

import zstandard

from builder.errors import ContextError, LayerError
from builder.fs import paths
from builder.oci.compress import gzip_reader
from builder.oci.tarformat import EntryType, TarHeader, TarReader, unpack_limit

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from builder.engine.chown import Owner
    from builder.engine.copy_dest import DestTree

_CHUNK: Final = 1 << 20
_GZIP: Final = b"\x1f\x8b\x08"
_BZIP2: Final = b"BZh"
_XZ: Final = b"\xfd7zXZ\x00"
_ZSTD: Final = b"\x28\xb5\x2f\xfd"
_BASE_DECOMPRESS_ERRORS: Final = (OSError, EOFError, ValueError, zlib.error, zstandard.ZstdError)


class _Capped(io.RawIOBase):
    """Counts what is read from ``inner`` and stops past ``limit`` bytes."""

    def __init__(self, inner: BinaryIO, limit: int) -> None:
        super().__init__()
        self._inner = inner
        self._limit = limit
        self.total = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._inner.read(len(view))
        self.total += len(data)
        if self.total > self._limit:
            raise LayerError(f"decompresses to more than {self._limit} bytes: limit exceeded")
        view[: len(data)] = data
        return len(data)


def _decompress_errors() -> tuple[type[Exception], ...]:
    # lazy: bz2/lzma load on use: most builds never meet such an archive
    import lzma

    return (*_BASE_DECOMPRESS_ERRORS, lzma.LZMAError)


@contextlib.contextmanager
def open_archive(fd: int) -> Iterator[BinaryIO]:
    """The decompressed stream of the file ``fd`` (read from its start; ``fd`` stays open)."""
    # lazy: bz2/lzma load on use: most builds never meet such an archive
    import bz2

    # lazy: bz2/lzma load on use: most builds never meet such an archive
    import lzma

    os.lseek(fd, 0, os.SEEK_SET)
    raw = io.BufferedReader(io.FileIO(fd, "rb", closefd=False), buffer_size=_CHUNK)
    head = raw.peek(6)[:6]
    stream: BinaryIO
    if head.startswith(_GZIP):
        stream = gzip_reader(raw)
    elif head.startswith(_BZIP2):
        stream = cast(BinaryIO, bz2.BZ2File(raw))
    elif head.startswith(_XZ):
        stream = cast(BinaryIO, lzma.LZMAFile(raw))  # noqa: SIM115 (closed below)
    elif head.startswith(_ZSTD):
        reader = zstandard.ZstdDecompressor().stream_reader(raw, read_across_frames=True)
        stream = cast(BinaryIO, io.BufferedReader(cast(io.RawIOBase, reader), _CHUNK))
    else:
        stream = cast(BinaryIO, raw)
    try:
        yield stream
    finally:
        with contextlib.suppress(*_decompress_errors()):
            stream.close()
        with contextlib.suppress(OSError):
            raw.close()


def is_archive(fd: int) -> bool:
    """BuildKit's ``isArchivePath``: (compressed) data starting with a valid tar header."""
    not_archive: tuple[type[Exception], ...] = (LayerError, *_decompress_errors())
    try:
        with open_archive(fd) as stream:
            return TarReader(stream).next() is not None
    except not_archive:
        return False


class _Breakout(ContextError):
    pass


def _rel_parts(name: str, what: str) -> tuple[str, ...]:
    """A member name as path components below the destination; ``..`` escapes are refused."""
    cleaned = paths.clean(name)
    parts = tuple(paths.split(cleaned))
    if parts and parts[0] == "..":
        raise _Breakout(f"{what} {name!r} is outside of the destination (breakout)")
    return parts


def extract_archive(
    fd: int,
    tree: DestTree,
    dest: tuple[str, ...],
    *,
    owner: Owner | None,
    clamp_ns: int | None,
    label: str,
) -> None:
    """Extract archive ``fd`` into directory ``dest`` (canonical, existing) of ``tree``."""
    limit = unpack_limit(os.fstat(fd).st_size)
    try:
        with open_archive(fd) as stream:
            capped = io.BufferedReader(_Capped(stream, limit), buffer_size=_CHUNK)
            reader = TarReader(cast(BinaryIO, capped))
            while (hdr := reader.next()) is not None:
                _extract_entry(hdr, reader, tree, dest, owner=owner, clamp_ns=clamp_ns)
    except _Breakout as exc:
        raise ContextError(f"ADD {label}: {exc.message}") from None
    except LayerError as exc:
        raise ContextError(f"ADD {label}: invalid archive: {exc.message}") from None
    except _decompress_errors() as exc:
        if isinstance(exc, OSError) and not isinstance(exc, EOFError) and exc.errno:
            raise
        raise ContextError(f"ADD {label}: corrupt compressed archive: {exc}") from None


def _extract_entry(
    hdr: TarHeader,
    reader: TarReader,
    tree: DestTree,
    dest: tuple[str, ...],
    *,
    owner: Owner | None,
    clamp_ns: int | None,
) -> None:
    rel = _rel_parts(hdr.name, "archive entry")
    if not rel:
        return  # the archive's root: the destination directory keeps its metadata
    parent = tree.resolve(rel[:-1], base=dest)
    if tree.lookup(parent) is None:
        tree.mkdir_all(parent, mode=0o755, owner=None)
    target = (*parent, rel[-1])
    existing = tree.lookup(target)
    if existing is not None:
        both_dirs = stat.S_ISDIR(existing.st.st_mode) and hdr.type is EntryType.DIR
        if not both_dirs:
            tree.replace(target)
    uid, gid = (owner.uid, owner.gid) if owner is not None else (hdr.uid, hdr.gid)
    mtime = hdr.mtime_ns if clamp_ns is None else min(hdr.mtime_ns, clamp_ns)
    mode = hdr.mode & 0o7777
    match hdr.type:
        case EntryType.DIR:
            if existing is None or not stat.S_ISDIR(existing.st.st_mode):
                tree.mkdir(target, mode=mode, uid=uid, gid=gid, mtime_ns=mtime)
            tree.set_dir_meta(
                target, mode=mode, uid=uid, gid=gid, mtime_ns=mtime, xattrs=hdr.xattrs
            )
        case EntryType.FILE:
            out = tree.create_file(target)
            try:
                while chunk := reader.read(_CHUNK):
                    view = memoryview(chunk)
                    while view:
                        view = view[os.write(out, view) :]
                tree.file_meta(out, target, mode=mode, uid=uid, gid=gid, mtime_ns=mtime)
                tree.set_xattrs_fd(out, hdr.xattrs)
            finally:
                os.close(out)
        case EntryType.SYMLINK:
            if not hdr.linkname.startswith("/") and _escapes(rel[:-1], hdr.linkname):
                raise _Breakout(
                    f"symlink {hdr.name!r} -> {hdr.linkname!r} is outside of the destination"
                    " (breakout)"
                )
            tree.symlink(target, hdr.linkname, uid=uid, gid=gid, mtime_ns=mtime)
        case EntryType.HARDLINK:
            link = _rel_parts(hdr.linkname, "hardlink target")
            if not link:
                raise ContextError(f"archive entry {hdr.name!r}: hardlink to a directory")
            lparent = tree.resolve(link[:-1], base=dest)
            tree.hardlink((*lparent, link[-1]), target)
        case EntryType.CHAR | EntryType.BLOCK | EntryType.FIFO:
            tree.special(
                target,
                kind=hdr.type,
                major=hdr.devmajor,
                minor=hdr.devminor,
                mode=mode,
                uid=uid,
                gid=gid,
                mtime_ns=mtime,
            )


def _escapes(parent: tuple[str, ...], linkname: str) -> bool:
    """Whether a relative symlink at ``parent/x`` to ``linkname`` leaves the destination."""
    depth = len(parent)
    for part in linkname.split("/"):
        if part in ("", "."):
            continue
        depth = depth - 1 if part == ".." else depth + 1
        if depth < 0:
            return True
    return False
