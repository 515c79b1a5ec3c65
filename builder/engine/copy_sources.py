"""Source selection for COPY and ADD: which entries a step reads, in copy order.

Sources are cleaned and rooted (``../x`` is ``/x``), symlinks in them are followed inside the
source; Go ``filepath.Match`` globs, an unmatched glob is not an error, a missing literal
source is. URLs are downloaded (``builder.engine.fetch``), heredocs are staged in a temporary
directory. ``iter_item`` walks one source as fsutil's copier does (pre-order), applying
``.dockerignore``, ``--exclude`` and ``--parents``.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import assert_never

from builder.context.checksum import ContentCache
from builder.context.ignore import (
    BadPatternError,
    MatchInfo,
    PatternMatcher,
    glob_match,
    has_wildcards,
)
from builder.context.sourcefs import FileSource, IgnoreState, Node, SourceFS, scan
from builder.digest import Digest
from builder.engine.copy_dest import show_path
from builder.engine.fetch import UrlFetcher
from builder.errors import ContextError
from builder.fs import paths
from builder.fs.root import DIR_FLAGS
from builder.plan.steps import CopySource, CopyStep, GitSource, InlineFile, PathSource, UrlSource

# --- what a copy reads -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Selection:
    """What a copy reads: a COPY/ADD step's sources and the flags that filter them, or the
    source path of a RUN bind mount, which reads like a plain COPY of it."""

    command: str  # COPY or ADD, for messages
    sources: tuple[CopySource, ...]
    inline_files: tuple[InlineFile, ...] = ()
    parents: bool = False
    excludes: tuple[str, ...] = ()
    unpack_local: bool = False  # ADD extracts local archives unless --unpack=false
    unpack_remote: bool = False  # downloads only with --unpack=true
    keep_git_dir: bool = False  # ADD --keep-git-dir

    @classmethod
    def of(cls, step: CopyStep) -> Selection:
        return cls(
            command=command_name(step),
            sources=step.sources,
            inline_files=step.inline_files,
            parents=step.parents,
            excludes=step.excludes,
            unpack_local=step.is_add if step.unpack is None else step.unpack,
            unpack_remote=step.unpack is True,
            keep_git_dir=bool(step.keep_git_dir),
        )

    @classmethod
    def of_mount(cls, path: str) -> Selection:
        return cls(command="COPY", sources=(PathSource(path=path),))


def command_name(step: CopyStep) -> str:
    return "ADD" if step.is_add else "COPY"


def not_found(source: FileSource, path: str) -> ContextError:
    return ContextError(
        f"failed to compute cache key: failed to calculate checksum of ref {source.name}:"
        f' "{path}": not found'
    )


# --- sources ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceItem:
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
class Sources:
    """Every item of a step, with what must be closed afterwards."""

    items: list[SourceItem] = field(default_factory=list)
    required: list[tuple[int, str]] = field(default_factory=list)  # --parents literal paths
    pinned: list[tuple[str, Digest]] = field(default_factory=list)  # URLs with --checksum
    closers: list[SourceFS] = field(default_factory=list)
    staging: tempfile.TemporaryDirectory[str] | None = None

    def staging_dir(self) -> Path:
        """A private directory for the files pybuild writes (heredocs, downloads)."""
        if self.staging is None:
            self.staging = tempfile.TemporaryDirectory(prefix="pybuild-copy-")
        return Path(self.staging.name)

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
    return paths.join(*head) if head else "/", "/".join(p for p in tail if p)


def _glob(fs: SourceFS, path: str, source: FileSource) -> list[tuple[str, str, Node]]:
    """Entries matching glob ``path`` as (canonical path, path below the literal prefix,
    node), in ``filepath.Walk`` order; a matched directory is not entered."""
    literal, pattern = _split_wildcards(path)
    base = fs.resolve(literal, follow=True)
    if base is None:
        raise not_found(source, literal)
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
                out.append((show_path(comps), rel, node))
            elif node.is_dir and level < depth:
                todo.append((comps, rel + "/", cstate, level + 1))
    return sorted(out, key=lambda found: [os.fsencode(c) for c in found[2].comps])


def collect_sources(
    source: FileSource,
    selection: Selection,
    *,
    fetcher: UrlFetcher,
    download: bool,
) -> Sources:
    """Resolve every source of ``selection``; ``download`` False leaves checksum-pinned URLs
    alone (their checksum stands for their content)."""
    out = Sources()
    try:
        _collect_into(out, source, selection, fetcher=fetcher, download=download)
    except BaseException:
        out.close()
        raise
    return out


def _collect_into(
    out: Sources,
    source: FileSource,
    selection: Selection,
    *,
    fetcher: UrlFetcher,
    download: bool,
) -> None:
    excludes = exclude_matcher(selection)
    fs: SourceFS | None = None
    for group, src in enumerate(selection.sources):
        match src:
            case PathSource():
                if fs is None:
                    fs = SourceFS(source)
                    out.closers.append(fs)
                _local(out, fs, source, src.path, selection, group=group, excludes=excludes)
            case UrlSource():
                if src.checksum is not None and not download:
                    out.pinned.append((src.url, src.checksum))
                    continue
                _url(out, src, selection, fetcher=fetcher, group=group)
            case GitSource():
                _git(out, src, selection, fetcher=fetcher, group=group, excludes=excludes)
            case _:
                assert_never(src)
    _inline(out, selection.inline_files)


def _git(
    out: Sources,
    src: GitSource,
    selection: Selection,
    *,
    fetcher: UrlFetcher,
    group: int,
    excludes: PatternMatcher | None,
) -> None:
    """A git source copies the contents of its checkout (or subdir), owned by root."""
    directory = fetcher.git(
        src.url,
        checksum=src.checksum,
        keep_git_dir=selection.keep_git_dir,
        command=selection.command,
    )
    staged = _StagedSource(root=directory, name=src.url)
    gfs = SourceFS(staged)
    out.closers.append(gfs)
    plain = replace(selection, parents=False, unpack_local=False)
    _local(out, gfs, staged, "/", plain, group=group, excludes=excludes)


def _url(
    out: Sources, src: UrlSource, selection: Selection, *, fetcher: UrlFetcher, group: int
) -> None:
    got = fetcher.fetch(src.url, checksum=src.checksum)
    directory = out.staging_dir() / f"url-{group}"
    directory.mkdir()
    fetcher.stage(got, directory)
    dfs = SourceFS(_StagedSource(root=directory, name=src.url))
    out.closers.append(dfs)
    node = dfs.resolve(got.filename, follow=False)
    assert node is not None
    out.items.append(
        SourceItem(
            label=src.url,
            base=got.filename,
            node=node,
            fs=dfs,
            contents=False,
            unpack=selection.unpack_remote,
            group=group,
        )
    )


def exclude_matcher(selection: Selection) -> PatternMatcher | None:
    if not selection.excludes:
        return None
    return PatternMatcher.compile(selection.excludes, what="--exclude") or None


def _local(
    out: Sources,
    fs: SourceFS,
    source: FileSource,
    src: str,
    selection: Selection,
    *,
    group: int,
    excludes: PatternMatcher | None,
) -> None:
    include: PatternMatcher | None = None
    unpack = selection.unpack_local
    if selection.parents:
        parent, sep, pattern = src.partition("/./")
        if not sep:
            parent, pattern = "/", src
        pattern = paths.join("/", pattern)
        if not has_wildcards(parent) and not has_wildcards(pattern):
            out.required.append((group, paths.join("/", parent, pattern)))
        include = PatternMatcher.compile([pattern.lstrip("/")], what="--parents")
        path = paths.join("/", parent)
    else:
        path = paths.join("/", src)
    if has_wildcards(path):
        for label, rel, found in _glob(fs, path, source):
            node = fs.resolve(label, follow=True) if stat.S_ISLNK(found.st.st_mode) else found
            if node is None:
                raise not_found(source, label)
            skip = excludes is not None and not node.is_dir and not selection.parents
            if skip and excludes is not None and excludes.match(rel)[0]:
                continue  # the documented --exclude behaviour (moby/buildkit#5489)
            out.items.append(
                SourceItem(
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
        raise not_found(source, path)
    out.items.append(
        SourceItem(
            label=path,
            base=path.rsplit("/", 1)[-1] or "/",
            node=node,
            fs=fs,
            include=include,
            unpack=unpack,
            group=group,
        )
    )


def _inline(out: Sources, inline_files: Sequence[InlineFile]) -> None:
    now = time.time_ns()
    for index, inline in enumerate(inline_files):
        base = paths.clean("/" + inline.name).rsplit("/", 1)[-1] or "heredoc"
        directory = out.staging_dir() / f"inline-{index}"
        directory.mkdir()
        path = directory / base
        path.write_bytes(inline.data.encode("utf-8", "surrogateescape"))
        os.chmod(path, inline.mode & 0o7777)
        os.utime(path, ns=(now, now))
        ifs = SourceFS(_StagedSource(root=directory))
        out.closers.append(ifs)
        node = ifs.resolve(base, follow=False)
        assert node is not None
        out.items.append(
            SourceItem(
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
class Event:
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
    item: SourceItem, excludes: PatternMatcher | None, *, top_pending: bool = False
) -> Iterator[Event]:
    """The entries a copy of ``item`` reads, in copy order (fsutil's copier, pre-order)."""
    fs = item.fs
    top = item.node
    if not top.is_dir:
        yield Event("", top, False, -1)
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
            yield Event("", top, False, -1)
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
                    yield Event(rel, node, False, frame.fd)
                continue
            if excluded and (excludes is None or not excludes.exclusions):
                continue
            try:
                cfd = os.open(name, DIR_FLAGS, dir_fd=frame.fd)
            except OSError as exc:
                if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    continue
                raise
            ignored = ign is not None and ign[0]
            pending = not included or ignored
            if not pending:
                yield from _materialize(frames)
                yield Event(rel, node, False, frame.fd)
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


def _materialize(frames: list[_Frame]) -> Iterator[Event]:
    for i, frame in enumerate(frames):
        if frame.pending:
            frame.pending = False
            yield Event(frame.rel, frame.node, frame.lazy, frames[i - 1].fd if i else -1)


def iter_item(
    item: SourceItem,
    excludes: PatternMatcher | None,
    required: list[tuple[int, str]],
    seen: set[int],
) -> Iterator[tuple[str, Event]]:
    """Events of ``item`` with the label of each entry; records satisfied --parents paths."""
    for ev in _walk(item, excludes):
        label = item.label if not ev.rel else paths.join(item.label, ev.rel)
        for idx, (group, path) in enumerate(required):
            if group == item.group and (label == path or label.startswith(path.rstrip("/") + "/")):
                seen.add(idx)
        yield label, ev


def check_required(source: FileSource, sources: Sources, seen: set[int]) -> None:
    for idx, (_, path) in enumerate(sources.required):
        if idx not in seen:
            raise not_found(source, path)
