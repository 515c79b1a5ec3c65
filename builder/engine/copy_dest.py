"""The destination of COPY and ADD: a layer directory seen over the read-only image rootfs.

``DestTree`` shows the empty layer directory stacked on the image's root filesystem as
overlayfs would, resolves destinations with symlinks followed inside the image, and writes only
into the layer directory (file contents in the background, directory metadata at ``finish``).
Names starting with ``.wh.`` are refused: they would be whiteouts.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import stat
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

from builder.context.sourcefs import list_xattrs
from builder.engine.reuse import PreviousLayer
from builder.engine.writeback import WriteBack
from builder.errors import ContextError
from builder.fs.root import (
    CREATE_FLAGS,
    DIR_FLAGS,
    PATH_FLAGS,
    READ_FLAGS,
    Root,
    ignorable_metadata_error,
    remove_at,
    resolve_components,
)
from builder.oci.tarformat import EntryType

if TYPE_CHECKING:
    from builder.context.checksum import ContentCache
    from builder.engine.chown import Owner

WHITEOUT_PREFIX: Final = ".wh."
_FD_CACHE: Final = 64
_CHUNK: Final = 1 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class CopiedItem:
    """One entry of the produced layer directory with the metadata it was given."""

    path: str
    kind: str  # file, dir, symlink, hardlink, char, block, fifo
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Seed:
    """Where a copied file's content digest goes: the source's content cache, with the
    source file's fstat taken before it was read."""

    cache: ContentCache
    st: os.stat_result


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyResult:
    items: tuple[CopiedItem, ...]

    def get(self, path: str) -> CopiedItem | None:
        for item in self.items:
            if item.path == path:
                return item
        return None


def show_path(comps: Sequence[str]) -> str:
    return "/" + "/".join(comps)


# --- the destination: a layer directory over a read-only rootfs --------------------------------


@dataclass(slots=True)
class _DirMeta:
    mode: int
    uid: int
    gid: int
    mtime_ns: int
    xattrs: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class Found:
    """An entry of the merged view and whether it lives in the layer directory."""

    st: os.stat_result
    in_layer: bool

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)


def _lstat_at(fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=fd, follow_symlinks=False)
    except (FileNotFoundError, NotADirectoryError):
        return None


class DestTree:
    """A writable layer directory stacked over a read-only rootfs, as overlayfs shows them.

    Paths are component tuples from the image root. Lookups see the layer first, then the
    rootfs below directories that are directories in both. Every access walks directory fds
    with ``O_NOFOLLOW``; symlinks are resolved by ``resolve`` inside the root (or inside
    ``base``, for archives), so nothing outside either tree is touched. Directory metadata is
    recorded and applied by ``finish`` (deepest first), after all children exist.
    """

    def __init__(
        self,
        layer: Path,
        rootfs: Path | None,
        *,
        now_ns: int,
        previous: PreviousLayer | None = None,
    ) -> None:
        self.now_ns = now_ns
        self._previous = previous
        self.same_owner = os.geteuid() == 0
        self._layer = Root(layer)
        self._layer_fd = self._layer.fd
        self._rootfs: Root | None = None
        self._root_fd: int | None = None
        if rootfs is not None:
            try:
                self._rootfs = Root(rootfs)
            except OSError:
                self._layer.close()
                raise
            self._root_fd = self._rootfs.fd
        self._fds: OrderedDict[tuple[bool, tuple[str, ...]], int] = OrderedDict()
        self.dirs: dict[tuple[str, ...], _DirMeta] = {}
        self.items: dict[tuple[str, ...], CopiedItem] = {}
        self._writes = WriteBack()
        # directories this tree created where the rootfs has no directory: nothing below them
        # can come from the rootfs, so lookups there skip it
        self._fresh: set[tuple[str, ...]] = set()
        # the names in each layer directory: the layer starts empty and only this tree writes
        # it, so a name missing here needs no lstat (which waits on the directory's lock while
        # background writes create files in it)
        self._listing: dict[tuple[str, ...], set[str]] = {(): set(os.listdir(self._layer_fd))}

    def close(self) -> None:
        self._writes.close()
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()
        self._layer.close()
        if self._rootfs is not None:
            self._rootfs.close()

    # --- fd cache -------------------------------------------------------------------------

    def _dir_fd(self, layer: bool, comps: tuple[str, ...]) -> int | None:
        """A borrowed fd of directory ``comps`` in the layer or the rootfs; None if it is not
        a directory there (missing, a file, or a symlink). Use it before the next call."""
        top = self._layer_fd if layer else self._root_fd
        if top is None:
            return None
        if not comps:
            return top
        key = (layer, comps)
        fd = self._fds.get(key)
        if fd is not None:
            self._fds.move_to_end(key)
            return fd
        parent = self._dir_fd(layer, comps[:-1])
        if parent is None:
            return None
        try:
            fd = os.open(comps[-1], DIR_FLAGS, dir_fd=parent)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                return None
            raise
        self._fds[key] = fd
        while len(self._fds) > _FD_CACHE:
            _, old = self._fds.popitem(last=False)
            os.close(old)
        return fd

    def _forget(self, comps: tuple[str, ...]) -> None:
        n = len(comps)
        for key in [k for k in self._fds if k[0] and k[1][:n] == comps]:
            os.close(self._fds.pop(key))
        for d in [d for d in self.dirs if d[:n] == comps]:
            del self.dirs[d]
        for f in [f for f in self.items if f[:n] == comps]:
            del self.items[f]
        self._fresh.difference_update([d for d in self._fresh if d[:n] == comps])
        for d in [d for d in self._listing if d[:n] == comps]:
            del self._listing[d]
        listing = self._listing.get(comps[:-1])
        if listing is not None:
            listing.discard(comps[-1])

    def _added(self, comps: tuple[str, ...], *, directory: bool = False) -> None:
        """Record a new layer entry (an empty directory, with ``directory``)."""
        listing = self._listing.get(comps[:-1])
        if listing is not None:
            listing.add(comps[-1])
        if directory:
            self._listing[comps] = set()

    # --- lookups --------------------------------------------------------------------------

    def _layer_blocked(self, comps: tuple[str, ...]) -> bool:
        """Whether some ancestor of ``comps`` is a non-directory in the layer (hiding lower)."""
        for i in range(len(comps)):
            parent = self._dir_fd(True, comps[:i])
            if parent is None:
                return False
            st = _lstat_at(parent, comps[i])
            if st is None:
                return False
            if not stat.S_ISDIR(st.st_mode):
                return True
        return False

    def lookup(self, comps: tuple[str, ...]) -> Found | None:
        """The entry at canonical path ``comps`` (not followed), or None."""
        self._writes.settle(comps)
        if not comps:
            return Found(os.fstat(self._layer_fd), True)
        listing = self._listing.get(comps[:-1])
        if listing is not None and comps[-1] not in listing:
            if comps[:-1] in self._fresh:
                return None  # neither the layer nor the rootfs has it
        elif (parent := self._dir_fd(True, comps[:-1])) is not None:
            st = _lstat_at(parent, comps[-1])
            if st is not None:
                return Found(st, True)
            if comps[:-1] in self._fresh:
                return None
        elif self._layer_blocked(comps[:-1]):
            return None
        rparent = self._dir_fd(False, comps[:-1])
        if rparent is None:
            return None
        st = _lstat_at(rparent, comps[-1])
        return Found(st, False) if st is not None else None

    def _readlink(self, comps: tuple[str, ...], in_layer: bool) -> str:
        parent = self._dir_fd(in_layer, comps[:-1])
        assert parent is not None
        return os.readlink(comps[-1], dir_fd=parent)

    def resolve(
        self, rel: tuple[str, ...], *, base: tuple[str, ...] = (), follow_final: bool = True
    ) -> tuple[str, ...]:
        """Canonical path of ``base + rel``: symlinks followed inside ``base`` (the root by
        default), missing components kept as they are (continuity's ``RootPath``); the one
        in-root algorithm of ``builder.fs.root`` over this layer-on-rootfs view."""

        def lstat(comps: tuple[str, ...]) -> os.stat_result | None:
            found = self.lookup(comps)
            return found.st if found is not None else None

        def readlink(comps: tuple[str, ...]) -> str:
            found = self.lookup(comps)
            assert found is not None
            return self._readlink(comps, found.in_layer)

        try:
            entry = resolve_components(
                rel, lstat=lstat, readlink=readlink, follow_final=follow_final, base=base
            )
        except OSError as exc:
            raise ContextError(f"{show_path((*base, *rel))}: {exc.strerror}") from None
        return entry.comps

    # --- writing --------------------------------------------------------------------------

    def _layer_dir(self, comps: tuple[str, ...]) -> int:
        """fd of ``comps`` as a directory in the layer, copying it up from the rootfs (with
        its metadata) when only the rootfs has it."""
        self._writes.settle(comps)
        for i in range(len(comps)):
            sub = comps[: i + 1]
            if self._dir_fd(True, sub) is not None:
                continue
            rparent = self._dir_fd(False, comps[:i])
            rst = _lstat_at(rparent, comps[i]) if rparent is not None else None
            xattrs = list_xattrs(rparent, comps[i]) if rparent is not None else ()
            parent = self._dir_fd(True, comps[:i])
            assert parent is not None
            if _lstat_at(parent, comps[i]) is not None:
                raise ContextError(f"{show_path(sub)}: not a directory")
            if rst is None or not stat.S_ISDIR(rst.st_mode):
                raise ContextError(f"{show_path(sub)}: not a directory")
            os.mkdir(comps[i], 0o700, dir_fd=parent)
            self._added(sub, directory=True)
            self.dirs.setdefault(
                sub,
                _DirMeta(
                    mode=stat.S_IMODE(rst.st_mode),
                    uid=rst.st_uid,
                    gid=rst.st_gid,
                    mtime_ns=rst.st_mtime_ns,
                    xattrs=xattrs,
                ),
            )
        fd = self._dir_fd(True, comps)
        assert fd is not None
        return fd

    @staticmethod
    def _check_name(comps: tuple[str, ...]) -> None:
        if comps and comps[-1].startswith(WHITEOUT_PREFIX):
            raise ContextError(
                f"{show_path(comps)}: file names starting with '.wh.' cannot be stored in a layer"
                " (reserved for whiteouts)"
            )

    def replace(self, comps: tuple[str, ...]) -> None:
        """Remove the layer's entry at ``comps`` (a new entry will hide the rootfs one)."""
        self._writes.settle(comps)
        listing = self._listing.get(comps[:-1])
        if listing is not None and comps[-1] not in listing:
            return
        parent = self._dir_fd(True, comps[:-1])
        if parent is not None and _lstat_at(parent, comps[-1]) is not None:
            self._forget(comps)
            parent = self._dir_fd(True, comps[:-1])
            assert parent is not None
            remove_at(parent, comps[-1])

    def mkdir(
        self, comps: tuple[str, ...], *, mode: int, uid: int, gid: int, mtime_ns: int
    ) -> None:
        self._check_name(comps)
        parent = self._layer_dir(comps[:-1])
        os.mkdir(comps[-1], 0o700, dir_fd=parent)
        self._added(comps, directory=True)
        self.dirs[comps] = _DirMeta(mode=mode & 0o7777, uid=uid, gid=gid, mtime_ns=mtime_ns)
        if comps[:-1] in self._fresh or self._dir_fd(False, comps) is None:
            self._fresh.add(comps)

    def mkdir_all(
        self, comps: tuple[str, ...], *, mode: int, owner: Owner | None
    ) -> list[tuple[str, ...]]:
        """Create the missing directories of canonical ``comps`` (Go's ``MkdirAll``)."""
        created: list[tuple[str, ...]] = []
        for i in range(1, len(comps) + 1):
            sub = comps[:i]
            found = self.lookup(sub)
            if found is None:
                uid, gid = (owner.uid, owner.gid) if owner is not None else (0, 0)
                self.mkdir(sub, mode=mode & 0o777, uid=uid, gid=gid, mtime_ns=self.now_ns)
                created.append(sub)
            elif not found.is_dir:
                raise ContextError(f"mkdir {show_path(sub)}: not a directory")
        return created

    def set_dir_meta(
        self,
        comps: tuple[str, ...],
        *,
        mode: int | None = None,
        uid: int | None = None,
        gid: int | None = None,
        mtime_ns: int | None = None,
        xattrs: tuple[tuple[str, bytes], ...] | None = None,
    ) -> None:
        if not comps:
            return  # the image root is not an entry of a layer
        self._layer_dir(comps)
        meta = self.dirs[comps]
        if mode is not None:
            meta.mode = mode & 0o7777
        if uid is not None:
            meta.uid = uid
        if gid is not None:
            meta.gid = gid
        if mtime_ns is not None:
            meta.mtime_ns = mtime_ns
        if xattrs is not None:
            meta.xattrs = xattrs

    def create_file(self, comps: tuple[str, ...]) -> int:
        """A new, empty regular file at ``comps`` (replacing the layer's entry); write fd."""
        self._check_name(comps)
        self.replace(comps)
        parent = self._layer_dir(comps[:-1])
        fd = os.open(comps[-1], CREATE_FLAGS, 0o600, dir_fd=parent)
        self._added(comps)
        return fd

    def write_file(
        self,
        comps: tuple[str, ...],
        src: int,
        *,
        xattrs: tuple[tuple[str, bytes], ...],
        mode: int,
        uid: int,
        gid: int,
        mtime_ns: int,
        in_layer: bool = True,
        seed: Seed | None = None,
    ) -> None:
        """A new regular file at ``comps`` with the contents of open file ``src`` (taken over
        and closed), written in the background (``WriteBack``); visible to lookups at once.
        ``in_layer=False`` says a lookup just found nothing at ``comps`` in the layer. With
        ``seed`` the bytes are hashed as they are copied and the sha256 handed to it."""
        try:
            self._check_name(comps)
            if in_layer:
                self.replace(comps)
            parent = os.dup(self._layer_dir(comps[:-1]))
        except BaseException:
            os.close(src)
            raise
        same_owner = self.same_owner
        name = comps[-1]

        def job() -> None:
            try:
                out = os.open(name, CREATE_FLAGS, 0o600, dir_fd=parent)
                try:
                    if seed is None:
                        copy_fd(src, out)
                    else:
                        seed.cache.seed(seed.st, *copy_fd_hashing(src, out, seed.st.st_size))
                    DestTree.set_xattrs_fd(out, xattrs)
                    _file_meta_fd(out, same_owner, mode=mode, uid=uid, gid=gid, mtime_ns=mtime_ns)
                finally:
                    os.close(out)
            finally:
                os.close(src)
                os.close(parent)

        self._writes.submit(comps, job)
        self._added(comps)
        self._record(comps, "file", mode, uid, gid)

    def link_previous(
        self,
        label: str,
        comps: tuple[str, ...],
        *,
        mode: int,
        uid: int,
        gid: int,
        mtime_ns: int,
        size: int,
        in_layer: bool,
    ) -> bool:
        """Make ``comps`` a hard link of the previous build's identical file (``reuse``);
        False when there is none and the file must be copied."""
        previous = self._previous
        if previous is None or label not in previous.labels:
            return False
        self._check_name(comps)
        if in_layer:
            self.replace(comps)
        parent = self._layer_dir(comps[:-1])
        if not previous.link(
            label, comps, parent, mode=mode, uid=uid, gid=gid, mtime_ns=mtime_ns, size=size
        ):
            return False
        self._added(comps)
        self._record(comps, "file", mode, uid, gid)
        return True

    def _record(self, comps: tuple[str, ...], kind: str, mode: int, uid: int, gid: int) -> None:
        self.items[comps] = CopiedItem(
            path=show_path(comps), kind=kind, mode=mode & 0o7777, uid=uid, gid=gid
        )

    def file_meta(
        self, fd: int, comps: tuple[str, ...], *, mode: int, uid: int, gid: int, mtime_ns: int
    ) -> None:
        _file_meta_fd(fd, self.same_owner, mode=mode, uid=uid, gid=gid, mtime_ns=mtime_ns)
        self._record(comps, "file", mode, uid, gid)

    @staticmethod
    def set_xattrs_fd(fd: int, xattrs: tuple[tuple[str, bytes], ...]) -> None:
        for key, value in xattrs:
            if key.startswith(("trusted.overlay.", "user.overlay.")):
                continue
            try:
                os.setxattr(fd, key, value)
            except OSError as exc:
                if not ignorable_metadata_error(exc):
                    raise

    def _meta_at(
        self, comps: tuple[str, ...], *, uid: int, gid: int, mode: int | None, mtime_ns: int
    ) -> None:
        parent = self._layer_dir(comps[:-1])
        try:
            os.chown(comps[-1], uid, gid, dir_fd=parent, follow_symlinks=False)
        except PermissionError:
            if self.same_owner:
                raise
        if mode is not None:
            fd = os.open(comps[-1], PATH_FLAGS, dir_fd=parent)
            try:
                os.chmod(f"/proc/self/fd/{fd}", mode & 0o7777)
            finally:
                os.close(fd)
        os.utime(comps[-1], ns=(mtime_ns, mtime_ns), dir_fd=parent, follow_symlinks=False)

    def symlink(
        self, comps: tuple[str, ...], target: str, *, uid: int, gid: int, mtime_ns: int
    ) -> None:
        self._check_name(comps)
        self.replace(comps)
        parent = self._layer_dir(comps[:-1])
        os.symlink(target, comps[-1], dir_fd=parent)
        self._added(comps)
        self._meta_at(comps, uid=uid, gid=gid, mode=None, mtime_ns=mtime_ns)
        self._record(comps, "symlink", 0o777, uid, gid)

    def special(
        self,
        comps: tuple[str, ...],
        *,
        kind: EntryType,
        major: int,
        minor: int,
        mode: int,
        uid: int,
        gid: int,
        mtime_ns: int,
    ) -> None:
        self._check_name(comps)
        self.replace(comps)
        parent = self._layer_dir(comps[:-1])
        if kind is EntryType.FIFO:
            os.mkfifo(comps[-1], 0o600, dir_fd=parent)
        else:
            fmt = stat.S_IFCHR if kind is EntryType.CHAR else stat.S_IFBLK
            try:
                os.mknod(comps[-1], 0o600 | fmt, os.makedev(major, minor), dir_fd=parent)
            except PermissionError:
                if self.same_owner:
                    raise
                return  # an unprivileged build cannot create device nodes
        self._added(comps)
        self._meta_at(comps, uid=uid, gid=gid, mode=mode, mtime_ns=mtime_ns)
        self._record(comps, kind.value, mode, uid, gid)

    def hardlink(self, source: tuple[str, ...], comps: tuple[str, ...]) -> None:
        """Make ``comps`` a hard link of ``source`` (a rootfs-only file is copied up first)."""
        self._check_name(comps)
        found = self.lookup(source)
        if found is None or found.is_dir or source == comps:
            raise ContextError(f"hard link target {show_path(source)} not found or not linkable")
        if not found.in_layer:
            self._copy_up_file(source, found.st)
        self.replace(comps)
        sparent = os.dup(self._layer_dir(source[:-1]))
        try:
            parent = self._layer_dir(comps[:-1])
            os.link(
                source[-1], comps[-1], src_dir_fd=sparent, dst_dir_fd=parent, follow_symlinks=False
            )
            self._added(comps)
        finally:
            os.close(sparent)
        st = self.lookup(comps)
        assert st is not None
        self._record(comps, "hardlink", stat.S_IMODE(st.st.st_mode), st.st.st_uid, st.st.st_gid)

    def _copy_up_file(self, comps: tuple[str, ...], st: os.stat_result) -> None:
        rparent = self._dir_fd(False, comps[:-1])
        assert rparent is not None
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(comps[-1], dir_fd=rparent)
            self.symlink(comps, target, uid=st.st_uid, gid=st.st_gid, mtime_ns=st.st_mtime_ns)
            return
        if not stat.S_ISREG(st.st_mode):
            raise ContextError(f"hard link target {show_path(comps)} is not a regular file")
        src = os.open(comps[-1], READ_FLAGS, dir_fd=rparent)
        try:
            out = self.create_file(comps)
            try:
                copy_fd(src, out)
                self.file_meta(
                    out,
                    comps,
                    mode=stat.S_IMODE(st.st_mode),
                    uid=st.st_uid,
                    gid=st.st_gid,
                    mtime_ns=st.st_mtime_ns,
                )
            finally:
                os.close(out)
        finally:
            os.close(src)

    def finish(self) -> CopyResult:
        """Apply directory metadata, deepest first; the items written, sorted by path."""
        self._writes.drain()
        for comps in sorted(self.dirs, key=len, reverse=True):
            meta = self.dirs[comps]
            fd = self._dir_fd(True, comps)
            if fd is None:
                continue
            if self.same_owner:
                os.fchown(fd, meta.uid, meta.gid)
            else:
                with contextlib.suppress(PermissionError):
                    os.fchown(fd, meta.uid, meta.gid)
            os.fchmod(fd, meta.mode)
            self.set_xattrs_fd(fd, meta.xattrs)
            os.utime(fd, ns=(meta.mtime_ns, meta.mtime_ns))
            self._record(comps, "dir", meta.mode, meta.uid, meta.gid)
        return CopyResult(items=tuple(self.items[k] for k in sorted(self.items)))


def _file_meta_fd(
    fd: int, same_owner: bool, *, mode: int, uid: int, gid: int, mtime_ns: int
) -> None:
    if same_owner:
        os.fchown(fd, uid, gid)
    else:
        with contextlib.suppress(PermissionError):
            os.fchown(fd, uid, gid)
    os.fchmod(fd, mode & 0o7777)
    os.utime(fd, ns=(mtime_ns, mtime_ns))


def copy_fd_hashing(src: int, dst: int, size: int) -> tuple[str, int]:
    """Copy all of ``src`` (expected ``size`` bytes) to ``dst`` through memory, hashing it:
    the sha256 hex of the bytes copied, and their number."""
    h = hashlib.sha256()
    done = 0
    while True:
        # one byte more than expected: a file of the expected size ends without a second read
        want = min(_CHUNK, size - done + 1) if done <= size else _CHUNK
        chunk = os.read(src, want)
        if not chunk:
            break
        h.update(chunk)
        done += len(chunk)
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]
        if len(chunk) < want and done == size:
            break
    return h.hexdigest(), done


def copy_fd(src: int, dst: int) -> None:
    """Copy all of ``src`` to ``dst`` (``copy_file_range`` when the kernel allows)."""
    try:
        while os.copy_file_range(src, dst, 1 << 30):
            pass
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
            raise
    while chunk := os.read(src, _CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(dst, view) :]
