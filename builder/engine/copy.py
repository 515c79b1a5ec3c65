"""COPY and ADD: the cache input of a copy, and the layer directory it produces.

``copy_source_digest`` hashes exactly the entries a COPY reads (after globs, ``--exclude``,
``--parents`` and ``.dockerignore``): their paths, content and metadata, never mtimes.
``apply_copy`` writes what the COPY adds to the image into an empty layer directory, seeing
the current root filesystem read-only through ``DestTree`` (nothing is written to it).

Semantics follow BuildKit's Dockerfile frontend (``dispatchCopy``) and file op
(``tonistiigi/fsutil/copy``):

* Sources are cleaned and rooted (``../x`` is ``/x``), symlinks in them are followed inside
  the source; Go ``filepath.Match`` globs, an unmatched glob is not an error, a missing
  literal source is. A directory source copies its contents, merged into the destination.
* A destination ending in ``/`` (or ``/.``) is a directory; a relative one is joined to
  WORKDIR; missing parents are created (0755, or the octal ``--chmod``; owned by the
  ``--chown`` user, else root). The destination and its parents are resolved in the image
  with symlinks followed *inside* the rootfs, and the layer records the resolved path.
* Modes are kept, owners are 0:0 for the build context and kept for other stages unless
  ``--chown``; ``--chmod`` applies to files and directories; mtimes are the source's (clamped
  to ``SOURCE_DATE_EPOCH`` when given); hard links inside one source stay hard links.
* ``--link`` (without ``--chmod``, as BuildKit) copies without any view of the image.

Deliberate differences: several sources into a destination that is not a directory is an
error (the classic builder's message) where BuildKit silently keeps the last one; a glob
match that is a file and matches ``--exclude`` is skipped, as documented (moby/buildkit#5489
is BuildKit's bug); a source file named ``.wh.*`` is refused (it would be a whiteout).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final, Protocol

from builder.context.checksum import ContentCache, entry_digest
from builder.context.ignore import (
    BadPatternError,
    MatchInfo,
    PatternMatcher,
    glob_match,
    go_clean,
    go_join,
    has_wildcards,
)
from builder.context.sourcefs import FileSource, IgnoreState, Node, SourceFS, list_xattrs, scan
from builder.digest import Digest
from builder.engine.add import (
    UrlFetcher,
    extract_archive,
    is_archive,
    is_git_source,
    is_url,
    parse_checksum,
)
from builder.engine.chown import ChownResolver, ModeSpec, Owner, parse_chmod
from builder.engine.reuse import CopyReuse, PreviousLayer
from builder.engine.writeback import WriteBack
from builder.errors import BuildError, ContextError, ExecutionError, Span, with_span
from builder.oci.inroot import ignorable_metadata_error, remove_at
from builder.oci.tarformat import EntryType

if TYPE_CHECKING:
    from builder.plan.graph import CopyStep

MAX_SYMLINK_HOPS: Final = 255
WHITEOUT_PREFIX: Final = ".wh."
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_READ_FILE: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_FD_CACHE: Final = 64
_CHUNK: Final = 1 << 20


# --- what the engine needs from a planned COPY/ADD ---------------------------------------------


class InlineFileLike(Protocol):
    """A heredoc source (``COPY <<EOF /dest``): file name, content (expanded), mode."""

    @property
    def name(self) -> str: ...

    @property
    def data(self) -> str | bytes: ...

    @property
    def mode(self) -> int: ...


class CopyStepLike(Protocol):
    """The fields of the planner's ``CopyStep`` that copying uses."""

    @property
    def is_add(self) -> bool: ...

    @property
    def sources(self) -> Sequence[str]: ...

    @property
    def inline_files(self) -> Sequence[InlineFileLike]: ...

    @property
    def dest(self) -> str: ...

    @property
    def workdir(self) -> str: ...

    @property
    def chown(self) -> str | None: ...

    @property
    def chmod(self) -> str | None: ...

    @property
    def link(self) -> bool: ...

    @property
    def parents(self) -> bool: ...

    @property
    def excludes(self) -> Sequence[str]: ...

    @property
    def checksum(self) -> str | None: ...

    @property
    def unpack(self) -> bool | None: ...

    @property
    def span(self) -> Span | None: ...


if TYPE_CHECKING:

    def _planner_step_conforms(step: CopyStep) -> CopyStepLike:
        return step


@dataclass(frozen=True, slots=True, kw_only=True)
class CopySourceDigest:
    """The cache input of a COPY: one digest, and the digest of every entry it reads.

    ``files`` pairs each path read (as the COPY names it, e.g. ``/src/app.py``, a URL, or
    ``<<EOF`` for a heredoc) with its entry digest, in copy order, so a changed file can be
    named when the cache misses.
    """

    digest: Digest
    files: tuple[tuple[str, Digest], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class CopiedItem:
    """One entry of the produced layer directory with the metadata it was given."""

    path: str
    kind: str  # file, dir, symlink, hardlink, char, block, fifo
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyResult:
    items: tuple[CopiedItem, ...]

    def get(self, path: str) -> CopiedItem | None:
        for item in self.items:
            if item.path == path:
                return item
        return None


def _cmd(step: CopyStepLike) -> str:
    return "ADD" if step.is_add else "COPY"


def normalize_dest(dest: str, workdir: str) -> str:
    """The absolute, cleaned destination, keeping a trailing ``/`` or ``/.`` (BuildKit)."""
    if not dest.startswith("/"):
        if dest in ("", "."):
            dest = "./"
        base = workdir if workdir.startswith("/") else "/" + workdir
        joined = go_join(base, dest)
    else:
        joined = go_join("/", dest)
    if dest.endswith("/") and not joined.endswith("/"):
        joined += "/"
    elif dest.endswith("/.") or dest == ".":
        joined = ("" if joined == "/" else joined) + "/."
    return joined


def _split(path: str) -> tuple[str, ...]:
    return tuple(c for c in path.split("/") if c not in ("", "."))


def _show(comps: Sequence[str]) -> str:
    return "/" + "/".join(comps)


def _not_found(source: FileSource, path: str) -> ContextError:
    return ContextError(
        f"failed to compute cache key: failed to calculate checksum of ref {source.name}:"
        f' "{path}": not found'
    )


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
        self._layer_fd = os.open(layer, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._root_fd: int | None = None
        if rootfs is not None:
            try:
                self._root_fd = os.open(rootfs, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            except OSError:
                os.close(self._layer_fd)
                raise
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
        os.close(self._layer_fd)
        if self._root_fd is not None:
            os.close(self._root_fd)

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
            fd = os.open(comps[-1], _DIR_FLAGS, dir_fd=parent)
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
        default), missing components kept as they are (continuity's ``RootPath``)."""
        stack = list(base)
        pending = list(reversed(rel))
        hops = 0
        while pending:
            comp = pending.pop()
            if comp in ("", "."):
                continue
            if comp == "..":
                if len(stack) > len(base):
                    stack.pop()
                continue
            found = self.lookup((*stack, comp))
            if found is None:
                stack.append(comp)
                for rest in reversed(pending):
                    if rest == "..":
                        if len(stack) > len(base):
                            stack.pop()
                    elif rest not in ("", "."):
                        stack.append(rest)
                break
            if stat.S_ISLNK(found.st.st_mode) and (pending or follow_final):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise ContextError(
                        f"{_show((*stack, comp))}: too many levels of symbolic links"
                    )
                target = self._readlink((*stack, comp), found.in_layer)
                if target.startswith("/"):
                    stack = list(base)
                pending.extend(reversed([p for p in target.split("/") if p]))
                continue
            stack.append(comp)
        return tuple(stack)

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
                raise ContextError(f"{_show(sub)}: not a directory")
            if rst is None or not stat.S_ISDIR(rst.st_mode):
                raise ContextError(f"{_show(sub)}: not a directory")
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
                f"{_show(comps)}: file names starting with '.wh.' cannot be stored in a layer"
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
                raise ContextError(f"mkdir {_show(sub)}: not a directory")
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
        fd = os.open(comps[-1], _NEW_FILE, 0o600, dir_fd=parent)
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
    ) -> None:
        """A new regular file at ``comps`` with the contents of open file ``src`` (taken over
        and closed), written in the background (``WriteBack``); visible to lookups at once.
        ``in_layer=False`` says a lookup just found nothing at ``comps`` in the layer."""
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
                out = os.open(name, _NEW_FILE, 0o600, dir_fd=parent)
                try:
                    copy_fd(src, out)
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
            path=_show(comps), kind=kind, mode=mode & 0o7777, uid=uid, gid=gid
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
            fd = os.open(comps[-1], os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
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
            raise ContextError(f"hard link target {_show(source)} not found or not linkable")
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
            raise ContextError(f"hard link target {_show(comps)} is not a regular file")
        src = os.open(comps[-1], _READ_FILE, dir_fd=rparent)
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


# --- sources ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class _Item:
    """One resolved source: ``node`` in ``fs``, named ``label`` (its base names the copy)."""

    label: str
    base: str  # the name a copy into a directory gets
    node: Node
    fs: SourceFS
    contents: bool = True  # a directory copies its contents (local sources)
    include: PatternMatcher | None = None  # --parents
    unpack: bool = False
    group: int = 0  # index of the source argument it came from


@dataclass(slots=True)
class _Sources:
    """Every item of a step, with what must be closed afterwards."""

    items: list[_Item] = field(default_factory=list)
    required: list[tuple[int, str]] = field(default_factory=list)  # --parents literal paths
    pinned: list[tuple[str, Digest]] = field(default_factory=list)  # URLs with --checksum
    closers: list[SourceFS] = field(default_factory=list)
    staging: tempfile.TemporaryDirectory[str] | None = None

    def close(self) -> None:
        for fs in self.closers:
            fs.close()
        if self.staging is not None:
            self.staging.cleanup()


@dataclass(frozen=True, slots=True, kw_only=True)
class _StagedSource:
    """A directory pybuild wrote (heredocs, downloads), owned by root."""

    root: Path
    name: str = "inline"
    matcher: PatternMatcher | None = None
    owner: tuple[int, int] | None = (0, 0)
    content_cache: ContentCache = field(default_factory=ContentCache)

    def excluded(self, rel: str) -> bool:
        return False


def _split_wildcards(path: str) -> tuple[str, str]:
    """BuildKit's splitWildcards: the literal prefix and the part from the first glob on."""
    parts = path.split("/")
    head: list[str] = []
    tail: list[str] = []
    for part in parts:
        if tail or has_wildcards(part):
            tail.append(part)
        else:
            head.append(part or "/")
    return go_join(*head) if head else "/", "/".join(p for p in tail if p)


def _glob(fs: SourceFS, path: str, source: FileSource) -> list[tuple[str, str, Node]]:
    """Entries matching glob ``path`` as (canonical path, path below the literal prefix,
    node), in ``filepath.Walk`` order; a matched directory is not entered."""
    literal, pattern = _split_wildcards(path)
    base = fs.resolve(literal, follow=True)
    if base is None:
        raise _not_found(source, literal)
    if not base.is_dir:
        return []
    depth = len(pattern.split("/"))
    out: list[tuple[str, str, Node]] = []
    todo: list[tuple[tuple[str, ...], str, IgnoreState | None, int]] = [
        (base.comps, "", fs.ignore_state(base.comps), 1)
    ]
    while todo:
        dcomps, prefix, dstate, level = todo.pop()
        fd = fs.open_dir(dcomps)
        try:
            entries = scan(fd)
        finally:
            os.close(fd)
        for name, st in entries:
            comps = (*dcomps, name)
            rel = f"{prefix}{name}"
            node = Node(comps, st)
            cstate = fs.child_state(dstate, comps) if fs.matcher is not None else None
            if fs.hidden(node, cstate):
                continue
            try:
                hit = glob_match(pattern, rel)
            except BadPatternError:
                raise ContextError(f"{path}: syntax error in pattern") from None
            if hit:
                out.append((_show(comps), rel, node))
            elif node.is_dir and level < depth:
                todo.append((comps, rel + "/", cstate, level + 1))
    return sorted(out, key=lambda found: [os.fsencode(c) for c in found[2].comps])


def _collect(
    source: FileSource,
    step: CopyStepLike,
    *,
    fetcher: UrlFetcher,
    download: bool,
) -> _Sources:
    """Resolve every source of ``step``; ``download`` False leaves checksum-pinned URLs alone."""
    out = _Sources()
    try:
        _collect_into(out, source, step, fetcher=fetcher, download=download)
    except BaseException:
        out.close()
        raise
    return out


def _collect_into(
    out: _Sources,
    source: FileSource,
    step: CopyStepLike,
    *,
    fetcher: UrlFetcher,
    download: bool,
) -> None:
    cmd = _cmd(step)
    excludes = _excludes(step)
    checksum = parse_checksum(step.checksum) if step.checksum else None
    if checksum is not None:
        if not step.is_add:
            raise ContextError("checksum can't be specified for COPY")
        if len(step.sources) != 1:
            raise ContextError("checksum can't be specified for multiple sources")
        if not is_url(step.sources[0]):
            raise ContextError("checksum requires HTTP(S) or Git sources")
    fs: SourceFS | None = None
    unpack_local = step.is_add if step.unpack is None else step.unpack
    for group, src in enumerate(step.sources):
        if is_git_source(src):
            if not step.is_add:
                raise ContextError("source can't be a git ref for COPY")
            raise ContextError(f"{cmd} {src}: git sources are not supported by pybuild yet")
        if is_url(src):
            if not step.is_add:
                raise ContextError("source can't be a URL for COPY")
            if checksum is not None and not download:
                out.pinned.append((src, checksum))
                continue
            got = fetcher.fetch(src, checksum=checksum)
            dfs = SourceFS(_StagedSource(root=got.directory, name=src))
            out.closers.append(dfs)
            node = dfs.resolve(got.filename, follow=False)
            assert node is not None
            out.items.append(
                _Item(
                    label=src,
                    base=got.filename,
                    node=node,
                    fs=dfs,
                    contents=False,
                    unpack=step.unpack is True,
                    group=group,
                )
            )
            continue
        if fs is None:
            fs = SourceFS(source)
            out.closers.append(fs)
        _local(out, fs, source, src, step=step, group=group, excludes=excludes, unpack=unpack_local)
    if step.inline_files:
        _inline(out, step)


def _excludes(step: CopyStepLike) -> PatternMatcher | None:
    if not step.excludes:
        return None
    return PatternMatcher.compile(step.excludes, what="--exclude") or None


def _local(
    out: _Sources,
    fs: SourceFS,
    source: FileSource,
    src: str,
    *,
    step: CopyStepLike,
    group: int,
    excludes: PatternMatcher | None,
    unpack: bool,
) -> None:
    include: PatternMatcher | None = None
    if step.parents:
        parent, sep, pattern = src.partition("/./")
        if not sep:
            parent, pattern = "/", src
        pattern = go_join("/", pattern)
        if not has_wildcards(parent) and not has_wildcards(pattern):
            out.required.append((group, go_join("/", parent, pattern)))
        include = PatternMatcher.compile([pattern.lstrip("/")], what="--parents")
        path = go_join("/", parent)
    else:
        path = go_join("/", src)
    if has_wildcards(path):
        for label, rel, found in _glob(fs, path, source):
            node = fs.resolve(label, follow=True) if stat.S_ISLNK(found.st.st_mode) else found
            if node is None:
                raise _not_found(source, label)
            skip = excludes is not None and not node.is_dir and not step.parents
            if skip and excludes is not None and excludes.match(rel)[0]:
                continue  # the documented --exclude behaviour (moby/buildkit#5489)
            out.items.append(
                _Item(
                    label=label,
                    base=found.comps[-1],
                    node=node,
                    fs=fs,
                    include=include,
                    unpack=unpack,
                    group=group,
                )
            )
        return
    node = fs.resolve(path, follow=True)
    if node is None:
        raise _not_found(source, path)
    out.items.append(
        _Item(
            label=path,
            base=path.rsplit("/", 1)[-1] or "/",
            node=node,
            fs=fs,
            include=include,
            unpack=unpack,
            group=group,
        )
    )


def _inline(out: _Sources, step: CopyStepLike) -> None:
    out.staging = tempfile.TemporaryDirectory(prefix="pybuild-heredoc-")
    now = time.time_ns()
    for index, inline in enumerate(step.inline_files):
        base = go_clean("/" + inline.name).rsplit("/", 1)[-1] or "heredoc"
        directory = Path(out.staging.name) / str(index)
        directory.mkdir()
        data = inline.data
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        path = directory / base
        path.write_bytes(data)
        os.chmod(path, inline.mode & 0o7777)
        os.utime(path, ns=(now, now))
        ifs = SourceFS(_StagedSource(root=directory))
        out.closers.append(ifs)
        node = ifs.resolve(base, follow=False)
        assert node is not None
        out.items.append(
            _Item(
                label=f"<<{inline.name}",
                base=base,
                node=node,
                fs=ifs,
                contents=False,
                group=-1,
            )
        )


# --- walking one source ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Event:
    """An entry to copy: ``rel`` below the source item ("" is the item itself).

    ``lazy`` marks a directory that is only copied because something below it is (an
    ``--parents`` include pattern or an ``--exclude`` exception): BuildKit then copies its
    metadata only when it creates it. ``parent_fd`` is the open directory holding the entry
    (valid until the next event), or -1 for the item itself.
    """

    rel: str
    node: Node
    lazy: bool
    parent_fd: int


@dataclass(slots=True)
class _Frame:
    node: Node
    rel: str
    fd: int
    entries: list[tuple[str, os.stat_result]]
    inc: MatchInfo | None
    exc: MatchInfo | None
    ign: IgnoreState | None
    pending: bool
    lazy: bool
    index: int = 0


def _walk(
    item: _Item, excludes: PatternMatcher | None, *, top_pending: bool = False
) -> Iterator[_Event]:
    """The entries a copy of ``item`` reads, in copy order (fsutil's copier, pre-order)."""
    fs = item.fs
    top = item.node
    if not top.is_dir:
        yield _Event("", top, False, -1)
        return
    include = item.include
    may_skip = include is None and (excludes is None or not excludes.exclusions)
    ign_top = fs.ignore_state(top.comps)
    pending_top = top_pending or (ign_top is not None and ign_top[0])
    frames = [
        _Frame(
            node=top,
            rel="",
            fd=fs.open_dir(top.comps),
            entries=[],
            inc=None,
            exc=None,
            ign=ign_top,
            pending=pending_top,
            lazy=False,
        )
    ]
    try:
        frames[0].entries = scan(frames[0].fd)
        if not pending_top:
            yield _Event("", top, False, -1)
        while frames:
            frame = frames[-1]
            if frame.index >= len(frame.entries):
                os.close(frames.pop().fd)
                continue
            name, st = frame.entries[frame.index]
            frame.index += 1
            comps = (*frame.node.comps, name)
            rel = f"{frame.rel}/{name}" if frame.rel else name
            node = Node(comps, st)
            is_dir = stat.S_ISDIR(st.st_mode)
            ign: IgnoreState | None = None
            if fs.matcher is not None:
                ign = fs.child_state(frame.ign, comps)
                if ign[0] and (not is_dir or not fs.matcher.may_reinclude_below(node.rel)):
                    continue
            included = True
            excluded = False
            inc_info: MatchInfo | None = None
            exc_info: MatchInfo | None = None
            if include is not None:
                included, inc_info = include.match(rel, frame.inc)
            if excludes is not None:
                hit, exc_info = excludes.match(rel, frame.exc)
                if hit:
                    included, excluded = False, True
            if not included and may_skip:
                continue
            if not is_dir:
                if included:
                    yield from _materialize(frames)
                    yield _Event(rel, node, False, frame.fd)
                continue
            if excluded and (excludes is None or not excludes.exclusions):
                continue
            try:
                cfd = os.open(name, _DIR_FLAGS, dir_fd=frame.fd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    continue
                raise
            ignored = ign is not None and ign[0]
            pending = not included or ignored
            if not pending:
                yield from _materialize(frames)
                yield _Event(rel, node, False, frame.fd)
            frames.append(
                _Frame(
                    node=node,
                    rel=rel,
                    fd=cfd,
                    entries=[],
                    inc=inc_info,
                    exc=exc_info,
                    ign=ign,
                    pending=pending,
                    lazy=not included,
                )
            )
            frames[-1].entries = scan(cfd)
    finally:
        for frame in frames:
            os.close(frame.fd)


def _materialize(frames: list[_Frame]) -> Iterator[_Event]:
    for i, frame in enumerate(frames):
        if frame.pending:
            frame.pending = False
            yield _Event(frame.rel, frame.node, frame.lazy, frames[i - 1].fd if i else -1)


def _iter_item(
    item: _Item, excludes: PatternMatcher | None, required: list[tuple[int, str]], seen: set[int]
) -> Iterator[tuple[str, _Event]]:
    """Events of ``item`` with the label of each entry; records satisfied --parents paths."""
    for ev in _walk(item, excludes):
        label = item.label if not ev.rel else go_join(item.label, ev.rel)
        for idx, (group, path) in enumerate(required):
            if group == item.group and (label == path or label.startswith(path.rstrip("/") + "/")):
                seen.add(idx)
        yield label, ev


def _check_required(source: FileSource, sources: _Sources, seen: set[int]) -> None:
    for idx, (_, path) in enumerate(sources.required):
        if idx not in seen:
            raise _not_found(source, path)


# --- the cache input ---------------------------------------------------------------------------


def _entry_digest(item: _Item, label: str, ev: _Event) -> Digest:
    fs = item.fs
    node = ev.node
    st = node.st
    uid, gid = fs.owner if fs.owner is not None else (st.st_uid, st.st_gid)
    linkname = ""
    content: str | None = None
    if ev.parent_fd >= 0:
        xattrs = list_xattrs(ev.parent_fd, node.comps[-1])
    else:
        xattrs = fs.xattrs(node.comps)
    if stat.S_ISLNK(st.st_mode):
        linkname = fs.readlink(node.comps)
    elif stat.S_ISREG(st.st_mode):

        def opener() -> int:
            if ev.parent_fd >= 0:
                return os.open(node.comps[-1], _READ_FILE, dir_fd=ev.parent_fd)
            return fs.open_file(node.comps)

        content = fs.source.content_cache.content_digest(st, opener)
    return entry_digest(
        name=label, st=st, uid=uid, gid=gid, linkname=linkname, xattrs=xattrs, content=content
    )


def copy_source_digest(
    source: FileSource, step: CopyStepLike, *, fetcher: UrlFetcher | None = None
) -> CopySourceDigest:
    """The cache input of ``step``: content and metadata (no mtime) of what it reads.

    Missing literal sources raise ``ContextError`` (BuildKit's ``failed to calculate checksum
    of ref ...: "/x": not found``). URLs are downloaded unless ``--checksum`` pins them; pass
    the same ``fetcher`` to ``apply_copy`` to download once.
    """
    own_fetcher = fetcher is None
    fetch = fetcher if fetcher is not None else UrlFetcher()
    try:
        sources = _collect(source, step, fetcher=fetch, download=False)
        try:
            files: list[tuple[str, Digest]] = []
            lines: list[str] = ["pybuild copy-source v1"]
            excludes = _excludes(step)
            seen: set[int] = set()
            for item in sources.items:
                lines.append(f"source {item.group} {item.label}")
                for label, ev in _iter_item(item, excludes, sources.required, seen):
                    dgst = _entry_digest(item, label, ev)
                    files.append((label, dgst))
                    lines.append(f"{label}\x00{dgst}{' lazy' if ev.lazy else ''}")
            _check_required(source, sources, seen)
            for url, dgst in sources.pinned:
                files.append((url, dgst))
                lines.append(f"pinned {url}\x00{dgst}")
            source.content_cache.flush()
        finally:
            sources.close()
    except BuildError as err:
        if step.span is not None:
            raise with_span(err, step.span) from None
        raise
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise ExecutionError(
            f"{_cmd(step)}: reading the sources failed: {exc.strerror or exc}{where}",
            span=step.span,
        ) from None
    finally:
        if own_fetcher:
            fetch.close()
    return CopySourceDigest(
        digest=Digest.of_bytes("\n".join(lines).encode("utf-8", "surrogateescape")),
        files=tuple(files),
    )


# --- applying ----------------------------------------------------------------------------------


class _Copier:
    """Copies one item's events to a destination path (fsutil's ``copier``)."""

    def __init__(
        self,
        tree: DestTree,
        item: _Item,
        *,
        mode: ModeSpec | None,
        owner: Owner | None,
        clamp_ns: int | None,
    ) -> None:
        self.tree = tree
        self.item = item
        self.mode = mode
        self.owner = owner
        self.clamp_ns = clamp_ns
        self.inodes: dict[tuple[int, int], tuple[str, ...]] = {}

    def _mtime(self, st: os.stat_result) -> int:
        if self.clamp_ns is not None:
            return min(st.st_mtime_ns, self.clamp_ns)
        return st.st_mtime_ns

    def _ids(self, st: os.stat_result) -> tuple[int, int]:
        if self.owner is not None:
            return self.owner.uid, self.owner.gid
        if self.item.fs.owner is not None:
            return self.item.fs.owner
        return st.st_uid, st.st_gid

    def _mode(self, st: os.stat_result) -> int:
        return self.mode.apply(st.st_mode) if self.mode is not None else stat.S_IMODE(st.st_mode)

    def _xattrs(self, ev: _Event) -> tuple[tuple[str, bytes], ...]:
        if ev.parent_fd >= 0:
            return list_xattrs(ev.parent_fd, ev.node.comps[-1])
        return self.item.fs.xattrs(ev.node.comps)

    def _dir_meta(self, target: tuple[str, ...], ev: _Event) -> None:
        st = ev.node.st
        uid, gid = self._ids(st)
        self.tree.set_dir_meta(
            target,
            mode=self._mode(st),
            uid=uid,
            gid=gid,
            mtime_ns=self._mtime(st),
            xattrs=self._xattrs(ev),
        )

    def _dir_only(self, target: tuple[str, ...], st: os.stat_result, overwrite: bool) -> bool:
        found = self.tree.lookup(target)
        if found is None:
            uid, gid = 0, 0
            self.tree.mkdir(
                target, mode=stat.S_IMODE(st.st_mode), uid=uid, gid=gid, mtime_ns=self.tree.now_ns
            )
            return True
        if not found.is_dir:
            raise ContextError(f"cannot copy to non-directory: {_show(target)}")
        if overwrite:
            self.tree.set_dir_meta(target, mode=stat.S_IMODE(st.st_mode))
        return False

    def handle(self, ev: _Event, dst: tuple[str, ...], label: str = "") -> None:
        target = (*dst, *ev.rel.split("/")) if ev.rel else dst
        st = ev.node.st
        if stat.S_ISDIR(st.st_mode):
            if ev.lazy:
                if self._dir_only(target, st, True):
                    self._dir_meta(target, ev)
                return
            top = not ev.rel
            created = self._dir_only(target, st, not top)
            if not top or created:
                self._dir_meta(target, ev)
            elif target:
                self.tree.set_dir_meta(target, mtime_ns=self._mtime(st))
            return
        found = self.tree.lookup(target)
        if found is not None and found.is_dir:
            raise ContextError(f"cannot replace to directory {_show(target)} with file")
        uid, gid = self._ids(st)
        mtime = self._mtime(st)
        name = ev.node.comps[-1]
        fs = self.item.fs
        if stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            first = self.inodes.get(key) if st.st_nlink > 1 else None
            if first is not None:
                self.tree.hardlink(first, target)
                return
            if st.st_nlink > 1:
                self.inodes[key] = target
            in_layer = found is not None and found.in_layer
            mode = self._mode(st)
            if self.tree.link_previous(
                label,
                target,
                mode=mode,
                uid=uid,
                gid=gid,
                mtime_ns=mtime,
                size=st.st_size,
                in_layer=in_layer,
            ):
                return
            if ev.parent_fd >= 0:
                src = os.open(name, _READ_FILE, dir_fd=ev.parent_fd)
            else:
                src = fs.open_file(ev.node.comps)
            try:
                fst = os.fstat(src)
                if (fst.st_dev, fst.st_ino) != key or not stat.S_ISREG(fst.st_mode):
                    raise ContextError(f"{self.item.label}: file changed while it was copied")
                xattrs = self._xattrs(ev)
            except BaseException:
                os.close(src)
                raise
            self.tree.write_file(
                target,
                src,
                xattrs=xattrs,
                mode=mode,
                uid=uid,
                gid=gid,
                mtime_ns=mtime,
                in_layer=in_layer,
            )
        elif stat.S_ISLNK(st.st_mode):
            if ev.parent_fd >= 0:
                link = os.readlink(name, dir_fd=ev.parent_fd)
            else:
                link = fs.readlink(ev.node.comps)
            self.tree.symlink(target, link, uid=uid, gid=gid, mtime_ns=mtime)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode) or stat.S_ISFIFO(st.st_mode):
            kind = (
                EntryType.CHAR
                if stat.S_ISCHR(st.st_mode)
                else EntryType.BLOCK
                if stat.S_ISBLK(st.st_mode)
                else EntryType.FIFO
            )
            self.tree.special(
                target,
                kind=kind,
                major=os.major(st.st_rdev),
                minor=os.minor(st.st_rdev),
                mode=self._mode(st),
                uid=uid,
                gid=gid,
                mtime_ns=mtime,
            )
        # sockets cannot be stored in a layer: skipped


def apply_copy(
    source: FileSource,
    step: CopyStepLike,
    *,
    rootfs: Path | None,
    out_dir: Path,
    chown_resolver: ChownResolver,
    source_date_epoch: int | None = None,
    fetcher: UrlFetcher | None = None,
    reuse: CopyReuse | None = None,
) -> CopyResult:
    """Populate the empty layer directory ``out_dir`` with what ``step`` adds to the image.

    ``rootfs`` is a read-only view of the image before the step (None for ``--link``, which is
    also ignored here when ``--link`` applies). ``reuse`` names the previous build's layer
    directory of this step, whose unchanged files are hard-linked instead of copied (see
    ``builder.engine.reuse``). Errors carry the step's span.
    """
    own_fetcher = fetcher is None
    fetch = fetcher if fetcher is not None else UrlFetcher()
    try:
        return _apply(
            source,
            step,
            rootfs=None if step.link and not step.chmod else rootfs,
            out_dir=out_dir,
            chown_resolver=chown_resolver,
            source_date_epoch=source_date_epoch,
            fetcher=fetch,
            reuse=reuse,
        )
    except BuildError as err:
        if step.span is not None:
            raise with_span(err, step.span) from None
        raise
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise ExecutionError(
            f"{_cmd(step)} failed: {exc.strerror or exc}{where}", span=step.span
        ) from None
    finally:
        if own_fetcher:
            fetch.close()


def _apply(
    source: FileSource,
    step: CopyStepLike,
    *,
    rootfs: Path | None,
    out_dir: Path,
    chown_resolver: ChownResolver,
    source_date_epoch: int | None,
    fetcher: UrlFetcher,
    reuse: CopyReuse | None,
) -> CopyResult:
    mode = parse_chmod(step.chmod)
    owner = chown_resolver.resolve(step.chown)
    dest = normalize_dest(step.dest, step.workdir)
    clamp_ns = source_date_epoch * 1_000_000_000 if source_date_epoch is not None else None
    now = time.time_ns()
    if clamp_ns is not None:
        now = min(now, clamp_ns)
    excludes = _excludes(step)
    sources = _collect(source, step, fetcher=fetcher, download=True)
    previous: PreviousLayer | None = None
    try:
        if reuse is not None:
            with contextlib.suppress(FileNotFoundError, NotADirectoryError):
                previous = PreviousLayer(reuse)
        tree = DestTree(out_dir, rootfs, now_ns=now, previous=previous)
        try:
            multi = len(sources.items) > 1
            seen: set[int] = set()
            for item in sources.items:
                _apply_item(
                    tree,
                    item,
                    step,
                    dest,
                    excludes=excludes,
                    sources=sources,
                    seen=seen,
                    multi=multi,
                    mode=mode,
                    owner=owner,
                    clamp_ns=clamp_ns,
                )
            _check_required(source, sources, seen)
            return tree.finish()
        finally:
            tree.close()
    finally:
        sources.close()
        if previous is not None:
            previous.close()


def _apply_item(
    tree: DestTree,
    item: _Item,
    step: CopyStepLike,
    dest: str,
    *,
    excludes: PatternMatcher | None,
    sources: _Sources,
    seen: set[int],
    multi: bool,
    mode: ModeSpec | None,
    owner: Owner | None,
    clamp_ns: int | None,
) -> None:
    dir_mode = mode.dir_mode() if mode is not None else 0o755
    if item.unpack and stat.S_ISREG(item.node.st.st_mode):
        fd = item.fs.open_file(item.node.comps)
        try:
            if is_archive(fd):
                target = tree.resolve(_split(dest))
                tree.mkdir_all(target, mode=0o755, owner=owner)
                extract_archive(fd, tree, target, owner=owner, clamp_ns=clamp_ns, label=item.label)
                return
        finally:
            os.close(fd)
    head, _, tail = dest.rpartition("/")
    ensure = head + "/" if tail not in ("", ".") else dest
    if _split(ensure):
        tree.mkdir_all(tree.resolve(_split(ensure)), mode=dir_mode, owner=owner)
    dst = tree.resolve(_split(go_clean(dest)))
    found = tree.lookup(dst)
    src_dir = item.node.is_dir
    dest_is_dir = found is not None and found.is_dir
    if (not item.contents and src_dir and found is not None) or (not src_dir and dest_is_dir):
        dst = (*dst, item.base)
    elif multi and not src_dir and not dest.endswith(("/", "/.")):
        raise ContextError(
            f"When using {_cmd(step)} with more than one source file, the destination must be"
            " a directory and end with a /"
        )
    target = dst[:-1]
    if item.contents and src_dir and found is None:
        target = dst
    tree.mkdir_all(target, mode=dir_mode, owner=owner)
    copier = _Copier(tree, item, mode=mode, owner=owner, clamp_ns=clamp_ns)
    for label, ev in _iter_item(item, excludes, sources.required, seen):
        copier.handle(ev, dst, label)
