"""COPY and ADD: the copier, which produces the layer directory of a step.

The cache input is ``builder.engine.copy_digest``, source selection
``builder.engine.copy_sources``, the destination ``builder.engine.copy_dest``.
``apply_copy`` writes what the COPY adds to the image into an empty layer directory, seeing
the current root filesystem read-only through ``DestTree`` (nothing is written to it).

Semantics follow BuildKit's Dockerfile frontend (``dispatchCopy``) and file op
(``tonistiigi/fsutil/copy``):

* Sources are cleaned and rooted (``../x`` is ``/x``), symlinks in them are followed inside
  the source; Go ``filepath.Match`` globs, an unmatched glob is not an error, a missing
  literal source is. A directory source copies its contents, merged into the destination.
* A destination ending in ``/`` (or ``/.``) is a directory; a relative one is joined to
  WORKDIR; missing parents are created 0755 (never ``--chmod``), owned by the
  ``--chown`` user, else root. The destination and its parents are resolved in the image
  with symlinks followed *inside* the rootfs, and the layer records the resolved path.
* Modes are kept, owners are 0:0 for the build context and kept for other stages unless
  ``--chown``; ``--chmod`` applies to the files and directories copied; mtimes are the
  source's (clamped to ``SOURCE_DATE_EPOCH`` when given); hard links inside one source stay
  hard links.
* ``--link`` (without ``--chmod``, as BuildKit) copies without any view of the image.

Deliberate differences: several sources into a destination that is not a directory is an
error (the classic builder's message) where BuildKit silently keeps the last one; a glob
match that is a file and matches ``--exclude`` is skipped, as documented (moby/buildkit#5489
is BuildKit's bug); a source file named ``.wh.*`` is refused (it would be a whiteout).
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from pathlib import Path

from builder.context.ignore import PatternMatcher
from builder.context.sourcefs import FileSource, list_xattrs
from builder.engine.archive import extract_archive, is_archive
from builder.engine.chown import ChownResolver, ModeSpec, Owner, parse_chmod
from builder.engine.copy_dest import CopyResult, DestTree, Seed, show_path
from builder.engine.copy_sources import (
    Event,
    Selection,
    SourceItem,
    Sources,
    check_required,
    collect_sources,
    command_name,
    exclude_matcher,
    iter_item,
)
from builder.engine.fetch import UrlFetcher
from builder.engine.reuse import CopyReuse, PreviousLayer
from builder.errors import BuildError, ContextError, ExecutionError, with_span
from builder.fs import paths
from builder.fs.root import READ_FLAGS
from builder.oci.tarformat import EntryType
from builder.plan.steps import CopyStep


def normalize_dest(dest: str, workdir: str) -> str:
    """The absolute, cleaned destination, keeping a trailing ``/`` or ``/.`` (BuildKit)."""
    if not dest.startswith("/"):
        if dest in ("", "."):
            dest = "./"
        base = workdir if workdir.startswith("/") else "/" + workdir
        joined = paths.join(base, dest)
    else:
        joined = paths.join("/", dest)
    if dest.endswith("/") and not joined.endswith("/"):
        joined += "/"
    elif dest.endswith("/.") or dest == ".":
        joined = ("" if joined == "/" else joined) + "/."
    return joined


# --- applying ----------------------------------------------------------------------------------


class _Copier:
    """Copies one item's events to a destination path (fsutil's ``copier``)."""

    def __init__(
        self,
        tree: DestTree,
        item: SourceItem,
        *,
        mode: ModeSpec | None,
        owner: Owner | None,
        clamp_ns: int | None,
        hashing: bool = False,
    ) -> None:
        self.tree = tree
        self.item = item
        self.hashing = hashing
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

    def _xattrs(self, ev: Event) -> tuple[tuple[str, bytes], ...]:
        if ev.parent_fd >= 0:
            return list_xattrs(ev.parent_fd, ev.node.comps[-1])
        return self.item.fs.xattrs(ev.node.comps)

    def _dir_meta(self, target: tuple[str, ...], ev: Event) -> None:
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
            raise ContextError(f"cannot copy to non-directory: {show_path(target)}")
        if overwrite:
            self.tree.set_dir_meta(target, mode=stat.S_IMODE(st.st_mode))
        return False

    def handle(self, ev: Event, dst: tuple[str, ...], label: str = "") -> None:
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
            raise ContextError(f"cannot replace to directory {show_path(target)} with file")
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
                src = os.open(name, READ_FLAGS, dir_fd=ev.parent_fd)
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
                seed=Seed(cache=fs.source.content_cache, st=fst) if self.hashing else None,
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
    step: CopyStep,
    *,
    rootfs: Path | None,
    out_dir: Path,
    chown_resolver: ChownResolver,
    source_date_epoch: int | None = None,
    fetcher: UrlFetcher | None = None,
    reuse: CopyReuse | None = None,
    hashing: bool = False,
) -> CopyResult:
    """Populate the empty layer directory ``out_dir`` with what ``step`` adds to the image.

    ``rootfs`` is a read-only view of the image before the step (None for ``--link``, which is
    also ignored here when ``--link`` applies). ``reuse`` names the previous build's layer
    directory of this step, whose unchanged files are hard-linked instead of copied (see
    ``builder.engine.reuse``). With ``hashing`` every regular file copied is read through
    memory and its sha256 seeds the source's content cache (``ContentCache.seed``), so the
    cache input computed afterwards reads no file again. Errors carry the step's span.
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
            hashing=hashing,
        )
    except BuildError as err:
        if step.span is not None:
            raise with_span(err, step.span) from None
        raise
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise ExecutionError(
            f"{command_name(step)} failed: {exc.strerror or exc}{where}", span=step.span
        ) from None
    finally:
        if own_fetcher:
            fetch.close()


def _apply(
    source: FileSource,
    step: CopyStep,
    *,
    rootfs: Path | None,
    out_dir: Path,
    chown_resolver: ChownResolver,
    source_date_epoch: int | None,
    fetcher: UrlFetcher,
    reuse: CopyReuse | None,
    hashing: bool,
) -> CopyResult:
    mode = parse_chmod(step.chmod)
    owner = chown_resolver.resolve(step.chown)
    dest = normalize_dest(step.dest, step.workdir)
    clamp_ns = source_date_epoch * 1_000_000_000 if source_date_epoch is not None else None
    now = time.time_ns()
    if clamp_ns is not None:
        now = min(now, clamp_ns)
    selection = Selection.of(step)
    excludes = exclude_matcher(selection)
    sources = collect_sources(source, selection, fetcher=fetcher, download=True)
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
                    hashing=hashing,
                )
            check_required(source, sources, seen)
            return tree.finish()
        finally:
            tree.close()
    finally:
        sources.close()
        if previous is not None:
            previous.close()


def _apply_item(
    tree: DestTree,
    item: SourceItem,
    step: CopyStep,
    dest: str,
    *,
    excludes: PatternMatcher | None,
    sources: Sources,
    seen: set[int],
    multi: bool,
    mode: ModeSpec | None,
    owner: Owner | None,
    clamp_ns: int | None,
    hashing: bool,
) -> None:
    if item.unpack and stat.S_ISREG(item.node.st.st_mode):
        fd = item.fs.open_file(item.node.comps)
        try:
            if is_archive(fd):
                target = tree.resolve(tuple(paths.split(dest)))
                tree.mkdir_all(target, mode=0o755, owner=owner)
                extract_archive(fd, tree, target, owner=owner, clamp_ns=clamp_ns, label=item.label)
                return
        finally:
            os.close(fd)
    head, _, tail = dest.rpartition("/")
    ensure = head + "/" if tail not in ("", ".") else dest
    # Missing parents are 0755 and owned by the --chown user (fsutil's MkdirAll); --chmod is
    # for what is copied, which includes a directory source's own top directory.
    parts = tuple(paths.split(ensure))
    if parts:
        tree.mkdir_all(tree.resolve(parts), mode=0o755, owner=owner)
    dst = tree.resolve(tuple(paths.split(paths.clean(dest))))
    found = tree.lookup(dst)
    src_dir = item.node.is_dir
    dest_is_dir = found is not None and found.is_dir
    if (not item.contents and src_dir and found is not None) or (not src_dir and dest_is_dir):
        dst = (*dst, item.base)
    elif multi and not src_dir and not dest.endswith(("/", "/.")):
        raise ContextError(
            f"When using {command_name(step)} with more than one source file,"
            " the destination must be a directory and end with a /"
        )
    tree.mkdir_all(dst[:-1], mode=0o755, owner=owner)
    copier = _Copier(tree, item, mode=mode, owner=owner, clamp_ns=clamp_ns, hashing=hashing)
    for label, ev in iter_item(item, excludes, sources.required, seen):
        copier.handle(ev, dst, label)
