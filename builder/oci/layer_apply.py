"""Extract a layer into a rootfs, in-root only, with OCI whiteouts; list a layer's entries.

Safety model: every entry's parent directory is opened through ``builder.fs.root`` (fd walk,
symlinks resolved inside the root, ``..`` and ``/`` clamped), the final component is never
followed, metadata is applied through the fd of the object just created or with
``follow_symlinks=False``. Names with ``..`` components or a leading ``/``, hardlinks that
leave the archive's namespace, and malformed whiteouts are refused with ``LayerError``.
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO, Final

from builder import debug
from builder.digest import Digest, Hasher
from builder.errors import DigestMismatchError, LayerError
from builder.fs.root import (
    CREATE_FLAGS,
    DIR_FLAGS,
    Dir,
    Root,
    chmod_nofollow,
    clear_dir_at,
    ignorable_metadata_error,
    lstat_at,
    remove_at,
)
from builder.oci.compress import DecompressingReader
from builder.oci.tarformat import EntryType, TarHeader, TarLimits, TarReader
from builder.oci.xattrs import kept_xattr

if TYPE_CHECKING:
    from typing_extensions import Buffer


WHITEOUT_PREFIX: Final = ".wh."
OPAQUE_MARKER: Final = ".wh..wh..opq"
_META_PREFIX: Final = ".wh..wh."


@dataclass(frozen=True, slots=True, kw_only=True)
class ApplyResult:
    diff_id: Digest
    uncompressed_size: int
    entries: int
    skipped: tuple[str, ...] = ()  # device nodes an unprivileged process cannot create


class _HashingReader(io.RawIOBase):
    def __init__(self, raw: BinaryIO) -> None:
        super().__init__()
        self._raw = raw
        self.hasher = Hasher()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self._raw.read(len(view))
        self.hasher.update(data)
        view[: len(data)] = data
        return len(data)


def entry_parts(name: str, *, what: str = "layer entry") -> list[str]:
    """Split an archive member name; refuse absolute names and ``..`` components."""
    if name.startswith("/"):
        raise LayerError(f"{what} {name[:200]!r}: absolute path not allowed in a layer")
    parts = [c for c in name.split("/") if c not in ("", ".")]
    if ".." in parts:
        raise LayerError(f"{what} {name[:200]!r}: path escapes the root ('..' component)")
    return parts


def open_layer_stream(
    stream: BinaryIO, *, limits: TarLimits, name: str
) -> tuple[_HashingReader, io.BufferedReader]:
    """Decompress (auto-detected) and hash the uncompressed bytes; returns (hasher, reader)."""
    dec = DecompressingReader(stream, max_bytes=limits.max_bytes, name=name)
    hashing = _HashingReader(io.BufferedReader(dec, buffer_size=1 << 20))
    return hashing, io.BufferedReader(hashing, buffer_size=1 << 16)


def _drain(reader: io.BufferedReader) -> None:
    while reader.read(1 << 20):
        pass


def list_entries(
    stream: BinaryIO, *, limits: TarLimits | None = None, name: str = "layer"
) -> tuple[TarHeader, ...]:
    """Every entry header of a (possibly compressed) layer, in archive order."""
    limits = limits or TarLimits()
    _, reader = open_layer_stream(stream, limits=limits, name=name)
    tar = TarReader(reader, limits=limits)
    out: list[TarHeader] = []
    while (hdr := tar.next()) is not None:
        out.append(hdr)
    return tuple(out)


def apply_layer(
    stream: BinaryIO,
    rootfs: str | os.PathLike[str],
    *,
    limits: TarLimits | None = None,
    expected_diff_id: Digest | None = None,
    same_owner: bool | None = None,
    name: str = "layer",
    overlay_lower: bool = False,
) -> ApplyResult:
    """Extract ``stream`` (gzip, zstd or plain tar) onto ``rootfs``.

    ``expected_diff_id`` is checked once the whole stream has been read; on mismatch
    ``DigestMismatchError`` is raised and the caller must discard the rootfs (the snapshot).
    ``same_owner`` defaults to "running as root".

    With ``overlay_lower`` the layer is extracted *alone* into an empty ``rootfs`` in overlayfs
    lower-directory form instead of being applied: ``.wh.x`` becomes a 0/0 character device
    ``x`` and ``.wh..wh..opq`` sets ``trusted.overlay.opaque=y`` on its directory (needs root).
    """
    limits = limits or TarLimits()
    if same_owner is None:
        same_owner = os.geteuid() == 0
    hashing, reader = open_layer_stream(stream, limits=limits, name=name)
    tar = TarReader(reader, limits=limits)
    try:
        root = Root(rootfs)
    except OSError as exc:
        raise LayerError(f"cannot open rootfs {os.fspath(rootfs)!r}: {exc.strerror}") from None
    with root:
        applier = (
            _OverlayLowerApplier(root, same_owner=same_owner)
            if overlay_lower
            else _Applier(root, same_owner=same_owner)
        )
        while (hdr := tar.next()) is not None:
            applier.apply(hdr, tar)
        applier.finish()
    _drain(reader)
    diff_id = hashing.hasher.digest()
    if expected_diff_id is not None and diff_id != expected_diff_id:
        raise DigestMismatchError(
            f"{name}: uncompressed content hashes to {diff_id}, config says {expected_diff_id}",
            expected=str(expected_diff_id),
            actual=str(diff_id),
        )
    return ApplyResult(
        diff_id=diff_id,
        uncompressed_size=hashing.hasher.size,
        entries=tar.entries,
        skipped=tuple(applier.skipped),
    )


def _open_dir(root: Root, parts: Sequence[str], *, create: bool, entry: str) -> Dir | None:
    """Directory ``parts`` in-root (created with mode 0755 when ``create``; None when missing
    otherwise); a walk error is a ``LayerError`` naming the layer entry."""
    try:
        return root.mkdir_all(parts) if create else root.open_resolved_dir(parts)
    except OSError as exc:
        raise LayerError(f"layer entry {entry!r}: {exc.strerror}") from None


class _Applier:
    def __init__(self, root: Root, *, same_owner: bool) -> None:
        self.root = root
        self.same_owner = same_owner
        self.created: set[tuple[str, ...]] = set()
        self.dir_times: list[tuple[tuple[str, ...], int]] = []
        self.skipped: list[str] = []

    def apply(self, hdr: TarHeader, tar: TarReader) -> None:
        parts = entry_parts(hdr.name)
        if not parts:
            return  # the root directory itself: never modified
        base = parts[-1]
        if base.startswith(WHITEOUT_PREFIX):
            self._whiteout(hdr.name, parts)
            return
        parent = _open_dir(self.root, parts[:-1], create=True, entry=hdr.name)
        assert parent is not None
        try:
            self._create(hdr, tar, parent, base)
        except OSError as exc:
            raise LayerError(f"layer entry {hdr.name[:200]!r}: {exc.strerror}") from None
        finally:
            parent.close()
        self.created.add((*parent.comps, base))

    def _whiteout(self, name: str, parts: list[str]) -> None:
        base = parts[-1]
        if base == OPAQUE_MARKER:
            self._opaque(name, parts[:-1])
            return
        if base.startswith(_META_PREFIX):
            return  # other aufs metadata (.wh..wh.plnk, ...) carries nothing for us
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", ".."):
            raise LayerError(f"layer entry {name[:200]!r}: invalid whiteout name (invalid archive)")
        parent = _open_dir(self.root, parts[:-1], create=False, entry=name)
        if parent is None:
            return
        try:
            if (*parent.comps, target) not in self.created:
                remove_at(parent.fd, target)
        except OSError as exc:
            raise LayerError(f"layer entry {name[:200]!r}: {exc.strerror}") from None
        finally:
            parent.close()

    def _opaque(self, name: str, dir_parts: list[str]) -> None:
        directory = _open_dir(self.root, dir_parts, create=False, entry=name)
        if directory is None:
            return
        try:
            self._clear_lower(directory)
        except OSError as exc:
            raise LayerError(f"layer entry {name[:200]!r}: {exc.strerror}") from None
        finally:
            directory.close()

    def _clear_lower(self, directory: Dir) -> None:
        """Remove what lower layers put under ``directory``; keep this layer's entries."""
        todo: list[tuple[int, tuple[str, ...], bool]] = [(directory.fd, directory.comps, False)]
        while todo:
            fd, path, owned = todo.pop()
            try:
                with os.scandir(fd) as it:
                    names = [e.name for e in it]
                keep = frozenset(n for n in names if (*path, n) in self.created)
                clear_dir_at(fd, ".", keep=keep)
                for child in sorted(keep):
                    st = lstat_at(fd, child)
                    if st is not None and stat.S_ISDIR(st.st_mode):
                        cfd = os.open(child, DIR_FLAGS, dir_fd=fd)
                        todo.append((cfd, (*path, child), True))
            finally:
                if owned:
                    os.close(fd)

    def _create(self, hdr: TarHeader, tar: TarReader, parent: Dir, base: str) -> None:
        pfd = parent.fd
        existing = lstat_at(pfd, base)
        keep_dir = (
            existing is not None and stat.S_ISDIR(existing.st_mode) and hdr.type is EntryType.DIR
        )
        link_src: tuple[Dir, str] | None = None
        if hdr.type is EntryType.HARDLINK:
            link_src = self._hardlink_source(hdr, (*parent.comps, base))
        try:
            if existing is not None and not keep_dir:
                remove_at(pfd, base)
            match hdr.type:
                case EntryType.FILE:
                    self._file(hdr, tar, pfd, base)
                case EntryType.DIR:
                    if not keep_dir:
                        os.mkdir(base, 0o700, dir_fd=pfd)
                    fd = os.open(base, DIR_FLAGS, dir_fd=pfd)
                    try:
                        self._meta_fd(fd, hdr, times=False)
                    finally:
                        os.close(fd)
                    self.dir_times.append(((*parent.comps, base), hdr.mtime_ns))
                case EntryType.SYMLINK:
                    os.symlink(hdr.linkname, base, dir_fd=pfd)
                    self._meta_at(pfd, base, hdr, chmod=False)
                case EntryType.HARDLINK:
                    assert link_src is not None
                    src, src_base = link_src
                    os.link(
                        src_base,
                        base,
                        src_dir_fd=src.fd,
                        dst_dir_fd=pfd,
                        follow_symlinks=False,
                    )
                case EntryType.CHAR | EntryType.BLOCK:
                    kind = stat.S_IFCHR if hdr.type is EntryType.CHAR else stat.S_IFBLK
                    try:
                        os.mknod(
                            base,
                            0o600 | kind,
                            os.makedev(hdr.devmajor, hdr.devminor),
                            dir_fd=pfd,
                        )
                    except PermissionError:
                        if os.geteuid() == 0:
                            raise
                        self.skipped.append(hdr.name)
                        return
                    self._meta_at(pfd, base, hdr, chmod=True)
                case EntryType.FIFO:
                    os.mkfifo(base, 0o600, dir_fd=pfd)
                    self._meta_at(pfd, base, hdr, chmod=True)
        finally:
            if link_src is not None:
                link_src[0].close()

    def _hardlink_source(self, hdr: TarHeader, dest: tuple[str, ...]) -> tuple[Dir, str]:
        parts = entry_parts(hdr.linkname, what=f"layer entry {hdr.name[:200]!r}: hardlink target")
        if not parts:
            raise LayerError(f"layer entry {hdr.name[:200]!r}: hardlink to the root directory")
        src = _open_dir(self.root, parts[:-1], create=False, entry=hdr.name)
        if src is None:
            raise LayerError(
                f"layer entry {hdr.name[:200]!r}: hardlink target {hdr.linkname[:200]!r} not found"
            )
        st = lstat_at(src.fd, parts[-1])
        if st is None or stat.S_ISDIR(st.st_mode) or (*src.comps, parts[-1]) == dest:
            src.close()
            raise LayerError(
                f"layer entry {hdr.name[:200]!r}: hardlink target {hdr.linkname[:200]!r}"
                " not found or not linkable"
            )
        return src, parts[-1]

    def _file(self, hdr: TarHeader, tar: TarReader, pfd: int, base: str) -> None:
        fd = os.open(base, CREATE_FLAGS, 0o600, dir_fd=pfd)
        try:
            while chunk := tar.read(1 << 20):
                view = memoryview(chunk)
                while view:
                    written = os.write(fd, view)
                    view = view[written:]
            self._meta_fd(fd, hdr, times=True)
        finally:
            os.close(fd)

    def _meta_fd(self, fd: int, hdr: TarHeader, *, times: bool) -> None:
        if self.same_owner:
            os.fchown(fd, hdr.uid, hdr.gid)
        os.fchmod(fd, hdr.mode & 0o7777)
        for key, value in hdr.xattrs:
            if not kept_xattr(key):
                debug.log(f"layer entry {hdr.name!r}: extended attribute {key!r} dropped")
                continue
            try:
                os.setxattr(fd, key, value)
            except OSError as exc:
                if not ignorable_metadata_error(exc):
                    raise
        if times:
            os.utime(fd, ns=(hdr.mtime_ns, hdr.mtime_ns))

    def _meta_at(self, pfd: int, base: str, hdr: TarHeader, *, chmod: bool) -> None:
        if self.same_owner:
            os.chown(base, hdr.uid, hdr.gid, dir_fd=pfd, follow_symlinks=False)
        if chmod:
            chmod_nofollow(pfd, base, hdr.mode & 0o7777)
        try:
            os.utime(base, ns=(hdr.mtime_ns, hdr.mtime_ns), dir_fd=pfd, follow_symlinks=False)
        except OSError as exc:
            if not ignorable_metadata_error(exc):
                raise

    def finish(self) -> None:
        """Set directory times last (children changed them), re-resolving each in-root."""
        for path, mtime_ns in reversed(self.dir_times):
            parent = _open_dir(self.root, path[:-1], create=False, entry="/".join(path))
            if parent is None:
                continue
            try:
                fd = os.open(path[-1], DIR_FLAGS, dir_fd=parent.fd)
            except OSError:
                continue
            finally:
                parent.close()
            try:
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)


OVERLAY_OPAQUE_XATTR: Final = "trusted.overlay.opaque"


class _OverlayLowerApplier(_Applier):
    """Extracts one layer into its own directory in overlayfs lower form (no lower content).

    OCI whiteouts hide only what *lower* layers have: a whiteout for an entry of this same layer
    keeps the entry (a directory becomes opaque so the lower one stays hidden), and an entry
    created over a whiteout of this layer replaces it (a directory again becomes opaque).
    """

    def __init__(self, root: Root, *, same_owner: bool) -> None:
        super().__init__(root, same_owner=same_owner)
        self.whiteouts: set[tuple[str, ...]] = set()

    def _whiteout(self, name: str, parts: list[str]) -> None:
        base = parts[-1]
        if base == OPAQUE_MARKER:
            self._opaque(name, parts[:-1])
            return
        if base.startswith(_META_PREFIX):
            return
        target = base[len(WHITEOUT_PREFIX) :]
        if target in ("", ".", ".."):
            raise LayerError(f"layer entry {name[:200]!r}: invalid whiteout name (invalid archive)")
        parent = _open_dir(self.root, parts[:-1], create=True, entry=name)
        assert parent is not None
        try:
            key = (*parent.comps, target)
            existing = lstat_at(parent.fd, target)
            if key in self.created:
                if existing is not None and stat.S_ISDIR(existing.st_mode):
                    _set_opaque_at(parent.fd, target)
                return
            if existing is not None:
                remove_at(parent.fd, target)
            os.mknod(target, stat.S_IFCHR, os.makedev(0, 0), dir_fd=parent.fd)
            self.whiteouts.add(key)
        except OSError as exc:
            raise LayerError(f"layer entry {name[:200]!r}: {exc.strerror}") from None
        finally:
            parent.close()

    def _opaque(self, name: str, dir_parts: list[str]) -> None:
        directory = _open_dir(self.root, dir_parts, create=True, entry=name)
        assert directory is not None
        try:
            os.setxattr(directory.fd, OVERLAY_OPAQUE_XATTR, b"y")
        except OSError as exc:
            raise LayerError(f"layer entry {name[:200]!r}: {exc.strerror}") from None
        finally:
            directory.close()

    def _create(self, hdr: TarHeader, tar: TarReader, parent: Dir, base: str) -> None:
        key = (*parent.comps, base)
        replaces_whiteout = key in self.whiteouts
        super()._create(hdr, tar, parent, base)
        if replaces_whiteout:
            self.whiteouts.discard(key)
            if hdr.type is EntryType.DIR:
                _set_opaque_at(parent.fd, base)


def _set_opaque_at(dir_fd: int, name: str) -> None:
    fd = os.open(name, DIR_FLAGS, dir_fd=dir_fd)
    try:
        os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
    finally:
        os.close(fd)
