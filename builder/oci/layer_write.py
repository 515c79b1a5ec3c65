"""Deterministic layer writer: one streaming pass gives the blob, its digest and the diff_id.

Entries are sorted by path (whiteouts first within a directory), owner names are empty,
mtimes are whole seconds optionally clamped to ``SOURCE_DATE_EPOCH``, no atime/ctime, hardlinks
(same inode) become link entries to the first path in sort order, and file contents are copied in
1 MiB chunks, so memory does not grow with file size.
"""

from __future__ import annotations

import os
import queue
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Final, Protocol, cast, runtime_checkable

from builder.digest import Digest, Hasher
from builder.errors import LayerError
from builder.fs.root import READ_FLAGS
from builder.oci.compress import compressor
from builder.oci.layer_apply import OPAQUE_MARKER, WHITEOUT_PREFIX, entry_parts
from builder.oci.mediatype import Compression, layer_media_type
from builder.oci.tarformat import BLOCK, END_OF_ARCHIVE, EntryType, TarHeader, encode_header
from builder.oci.xattrs import kept_xattr

_CHUNK: Final = 1 << 20
_QUEUE_CHUNKS: Final = 8  # at most this many chunks wait for the worker (memory bound)
_OVERLAY_OPAQUE: Final = ("trusted.overlay.opaque", "user.overlay.opaque")


class BlobSink(Protocol):
    """Where a layer blob goes: a file, ``io.BytesIO`` or the store's ``BlobWriter``."""

    def write(self, data: bytes, /) -> object: ...

    def flush(self) -> object: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerEntry:
    """One item to put into a layer.

    ``source`` is a host file whose bytes are the content (read in chunks, never whole);
    ``data`` is inline content for small synthetic files. ``marker`` is set only by
    ``whiteout``/``opaque``: an ordinary entry whose name starts with ``.wh.`` is refused.
    """

    path: str
    type: EntryType = EntryType.FILE
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime_ns: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    xattrs: tuple[tuple[str, bytes], ...] = ()
    size: int = 0
    source: str | None = None
    data: bytes | None = None
    marker: bool = False

    @classmethod
    def whiteout(cls, path: str) -> LayerEntry:
        """Delete ``path`` of lower layers (``dir/.wh.name``)."""
        parts = entry_parts(path.lstrip("/"))
        if not parts:
            raise LayerError("cannot white out the root directory")
        name = "/".join([*parts[:-1], WHITEOUT_PREFIX + parts[-1]])
        return cls(path=name, mode=0, marker=True)

    @classmethod
    def opaque(cls, directory: str) -> LayerEntry:
        """Hide everything lower layers have under ``directory`` (``dir/.wh..wh..opq``)."""
        parts = entry_parts(directory.lstrip("/"))
        return cls(path="/".join([*parts, OPAQUE_MARKER]), mode=0, marker=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerResult:
    diff_id: Digest
    digest: Digest
    size: int
    media_type: str
    uncompressed_size: int
    entries: int


def _sort_key(path: str, marker: bool) -> tuple[tuple[int, bytes], ...]:
    parts = path.split("/")
    last = parts[-1]
    rank = 2
    if marker:
        rank = 0 if last == OPAQUE_MARKER else 1
    head = tuple((2, os.fsencode(p)) for p in parts[:-1])
    return (*head, (rank, os.fsencode(last)))


def _list_xattrs(path: str) -> tuple[tuple[str, bytes], ...]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    out: list[tuple[str, bytes]] = []
    for name in names:
        # overlayfs bookkeeping, host SELinux labels, trusted.*: never a layer's (SECURITY.md)
        if not kept_xattr(name):
            continue
        try:
            out.append((name, os.getxattr(path, name, follow_symlinks=False)))
        except OSError:
            continue
    return tuple(sorted(out))


def _is_overlay_opaque(path: str) -> bool:
    for name in _OVERLAY_OPAQUE:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def scan_dir(root: str | os.PathLike[str], *, overlay: bool = False) -> list[LayerEntry]:
    """Entries for every object under ``root`` (not ``root`` itself), hardlinks resolved.

    With ``overlay`` the directory is an overlayfs upperdir: a 0/0 character device becomes a
    whiteout and an opaque-marked directory gets an opaque entry. Sockets are skipped.
    """
    base = os.fspath(root)
    found: list[tuple[LayerEntry, tuple[int, int] | None]] = []
    todo = [""]
    while todo:
        rel = todo.pop()
        directory = os.path.join(base, rel) if rel else base
        with os.scandir(directory) as it:
            children = sorted((e.name, e.path) for e in it)
        for name, full in children:
            relpath = f"{rel}/{name}" if rel else name
            st = os.lstat(full)
            mode = st.st_mode
            if name.startswith(WHITEOUT_PREFIX):
                raise LayerError(
                    f"{relpath!r}: file names starting with '.wh.' cannot be stored in a layer"
                    " (reserved for whiteouts)"
                )
            if overlay and stat.S_ISCHR(mode) and st.st_rdev == 0:
                found.append((LayerEntry.whiteout(relpath), None))
                continue
            inode = (st.st_dev, st.st_ino) if st.st_nlink > 1 else None
            kind: EntryType | None = None
            size = 0
            source: str | None = None
            linkname = ""
            devmajor = devminor = 0
            if stat.S_ISREG(mode):
                kind, size, source = EntryType.FILE, st.st_size, full
            elif stat.S_ISDIR(mode):
                kind, inode = EntryType.DIR, None
            elif stat.S_ISLNK(mode):
                kind, linkname = EntryType.SYMLINK, os.readlink(full)
            elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                kind = EntryType.CHAR if stat.S_ISCHR(mode) else EntryType.BLOCK
                devmajor, devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            elif stat.S_ISFIFO(mode):
                kind = EntryType.FIFO
            if kind is None:
                continue  # sockets and anything else: not representable, skipped (as containerd)
            entry = LayerEntry(
                path=relpath,
                type=kind,
                mode=stat.S_IMODE(mode),
                uid=st.st_uid,
                gid=st.st_gid,
                mtime_ns=st.st_mtime_ns,
                linkname=linkname,
                devmajor=devmajor,
                devminor=devminor,
                xattrs=_list_xattrs(full),
                size=size,
                source=source,
            )
            found.append((entry, inode))
            if kind is EntryType.DIR:
                if overlay and _is_overlay_opaque(full):
                    found.append((LayerEntry.opaque(relpath), None))
                todo.append(relpath)
    found.sort(key=lambda pair: _sort_key(pair[0].path, pair[0].marker))
    first_path: dict[tuple[int, int], str] = {}
    out: list[LayerEntry] = []
    for entry, inode in found:
        if inode is not None:
            if inode in first_path:
                entry = replace(
                    entry,
                    type=EntryType.HARDLINK,
                    linkname=first_path[inode],
                    size=0,
                    source=None,
                    xattrs=(),
                )
            else:
                first_path[inode] = entry.path
        out.append(entry)
    return out


def _normalise(entries: Iterable[LayerEntry]) -> list[LayerEntry]:
    out: list[LayerEntry] = []
    seen: set[str] = set()
    for entry in entries:
        parts = entry_parts(entry.path.lstrip("/"), what="layer path")
        if not parts:
            raise LayerError(f"layer path {entry.path!r}: the root directory cannot be an entry")
        if parts[-1].startswith(WHITEOUT_PREFIX) and not entry.marker:
            raise LayerError(
                f"{entry.path!r}: file names starting with '.wh.' cannot be stored in a layer"
                " (reserved for whiteouts)"
            )
        path = "/".join(parts)
        if path in seen:
            raise LayerError(f"duplicate path {path!r} in layer")
        seen.add(path)
        if entry.data is not None:
            entry = replace(entry, size=len(entry.data))
        out.append(replace(entry, path=path) if path != entry.path else entry)
    out.sort(key=lambda e: _sort_key(e.path, e.marker))
    return _links_after_targets(out)


def _links_after_targets(entries: list[LayerEntry]) -> list[LayerEntry]:
    """A hardlink sorted before its target swaps roles with it (same inode either way), so
    every link entry follows the file it names, as extractors require."""
    position = {e.path: i for i, e in enumerate(entries)}
    for i, entry in enumerate(entries):
        if entry.type is not EntryType.HARDLINK:
            continue
        target = entries[position[entry.linkname]] if entry.linkname in position else None
        j = position.get(entry.linkname, -1)
        if target is None or j < i or target.type is not EntryType.FILE:
            continue
        entries[i] = replace(target, path=entry.path)
        entries[j] = replace(entry, path=target.path, linkname=entry.path)
        for k in range(i + 1, len(entries)):
            other = entries[k]
            if other.type is EntryType.HARDLINK and other.linkname == target.path and k != j:
                entries[k] = replace(other, linkname=entry.path)
    return entries


@runtime_checkable
class HashingSink(BlobSink, Protocol):
    """A sink that hashes what it is given (the store's ``BlobWriter``): the layer writer uses
    its hasher for the blob digest instead of hashing the compressed bytes a second time."""

    @property
    def hasher(self) -> Hasher: ...


class _Worker:
    """A thread applying ``fn`` to chunks in order, fed through a bounded queue. After a
    failure it keeps taking chunks (so the producer never blocks) and keeps the error."""

    def __init__(self, name: str, fn: Callable[[bytes], object]) -> None:
        self._fn = fn
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE_CHUNKS)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def put(self, chunk: bytes) -> None:
        self._queue.put(chunk)

    def _run(self) -> None:
        while (chunk := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self._fn(chunk)
                except BaseException as exc:  # re-raised in the producer
                    self.error = exc

    def stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()


class _Sink:
    """Buffers tar bytes and hands them, in 1 MiB chunks, to two worker threads: one hashes
    them (diff_id), the other compresses them and writes (and hashes) the blob. Reading files
    and building headers thus overlaps with the C code, which releases the GIL (hashlib,
    ISA-L, zstd, ``os.write``). A worker's failure is raised in the producer at its next
    ``write`` or at ``close``."""

    def __init__(self, out: BlobSink, compression: Compression) -> None:
        self._out = out
        self._comp = compressor(compression)
        self._buf = bytearray()
        self.diff = Hasher()
        self._own_blob_hash = not isinstance(out, HashingSink)
        self.blob = Hasher() if self._own_blob_hash else cast(HashingSink, out).hasher
        self._workers = (
            _Worker("layer-diff-id", self.diff.update),
            _Worker("layer-compress", self._compress),
        )

    def write(self, data: bytes | memoryview) -> None:
        self._buf += data
        if len(self._buf) >= _CHUNK:
            self._hand_over()

    def _hand_over(self) -> None:
        self._raise_failure()
        chunk = bytes(self._buf)
        self._buf.clear()
        for worker in self._workers:
            worker.put(chunk)

    def _raise_failure(self) -> None:
        for worker in self._workers:
            if worker.error is not None:
                self.abandon()
                raise worker.error

    def _compress(self, chunk: bytes) -> None:
        self._emit(self._comp.compress(chunk))

    def _emit(self, data: bytes) -> None:
        if data:
            if self._own_blob_hash:
                self.blob.update(data)
            self._out.write(data)

    def close(self) -> None:
        """Hand over what is buffered, wait for the workers, finish the compressed stream."""
        if self._buf:
            self._hand_over()
        self.abandon()
        self._raise_failure()
        self._emit(self._comp.flush())
        self._out.flush()

    def abandon(self) -> None:
        """Stop the workers once they have taken what was handed over."""
        for worker in self._workers:
            worker.stop()


def _copy_file(sink: _Sink, entry: LayerEntry) -> None:
    assert entry.source is not None
    try:
        fd = os.open(entry.source, READ_FLAGS)  # a path our own scan produced; never a link
    except OSError as exc:
        raise LayerError(f"{entry.path!r}: cannot read {entry.source!r}: {exc.strerror}") from None
    try:
        remaining = entry.size
        while remaining > 0:
            want = min(_CHUNK, remaining + 1)  # one byte more than is left: growth shows at once
            chunk = os.read(fd, want)
            if not chunk:
                raise LayerError(f"{entry.path!r}: file shrank while it was being archived")
            if len(chunk) > remaining:
                raise LayerError(f"{entry.path!r}: file grew while it was being archived")
            sink.write(chunk)
            remaining -= len(chunk)
            if remaining == 0 and len(chunk) < want:
                return  # a short read that ended the file: end of file, no further read
        if os.read(fd, 1):
            raise LayerError(f"{entry.path!r}: file grew while it was being archived")
    finally:
        os.close(fd)


def write_layer(
    source: str | os.PathLike[str] | Iterable[LayerEntry],
    out: BlobSink,
    *,
    compression: Compression = Compression.GZIP,
    source_date_epoch: int | None = None,
    docker_media_type: bool = False,
    overlay: bool = False,
) -> LayerResult:
    """Write a layer blob to ``out`` from a directory tree or from explicit entries."""
    if isinstance(source, str | os.PathLike):
        entries = scan_dir(source, overlay=overlay)
    else:
        entries = _normalise(source)
    sink = _Sink(out, compression)
    try:
        _write_entries(sink, entries, source_date_epoch)
    finally:
        sink.abandon()  # the workers are stopped already after a successful close
    return LayerResult(
        diff_id=sink.diff.digest(),
        digest=sink.blob.digest(),
        size=sink.blob.size,
        media_type=layer_media_type(compression, docker=docker_media_type),
        uncompressed_size=sink.diff.size,
        entries=len(entries),
    )


def _write_entries(sink: _Sink, entries: list[LayerEntry], source_date_epoch: int | None) -> None:
    for entry in entries:
        seconds = entry.mtime_ns // 1_000_000_000
        if source_date_epoch is not None and seconds > source_date_epoch:
            seconds = source_date_epoch
        size = entry.size if entry.type is EntryType.FILE else 0
        header = TarHeader(
            name=entry.path,
            type=entry.type,
            mode=entry.mode,
            uid=entry.uid,
            gid=entry.gid,
            size=size,
            mtime_ns=seconds * 1_000_000_000,
            linkname=entry.linkname,
            devmajor=entry.devmajor,
            devminor=entry.devminor,
            xattrs=entry.xattrs,
        )
        sink.write(encode_header(header))
        if size:
            if entry.data is not None:
                sink.write(entry.data)
            else:
                _copy_file(sink, entry)
            sink.write(bytes(-size % BLOCK))
    sink.write(END_OF_ARCHIVE)
    sink.close()
