"""The cache input of COPY and ADD: a digest of exactly the entries a step reads.

Paths, content and metadata of what the step reads after globs, ``--exclude``, ``--parents``
and ``.dockerignore``, never mtimes; checksum-pinned URLs by their checksum.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass

from builder.context.checksum import entry_digest
from builder.context.sourcefs import FileSource, list_xattrs
from builder.digest import Digest
from builder.engine.copy_sources import (
    Event,
    Selection,
    SourceItem,
    check_required,
    collect_sources,
    exclude_matcher,
    iter_item,
)
from builder.engine.fetch import UrlFetcher
from builder.errors import BuildError, ExecutionError, Span, with_span
from builder.fs.root import READ_FLAGS
from builder.plan.steps import CopyStep


@dataclass(frozen=True, slots=True, kw_only=True)
class CopySourceDigest:
    """The cache input of a COPY: one digest, and the digest of every entry it reads.

    ``files`` pairs each path read (as the COPY names it, e.g. ``/src/app.py``, a URL, or
    ``<<EOF`` for a heredoc) with its entry digest, in copy order, so a changed file can be
    named when the cache misses.
    """

    digest: Digest
    files: tuple[tuple[str, Digest], ...]


# --- the cache input ---------------------------------------------------------------------------


def _entry_digest(item: SourceItem, label: str, ev: Event) -> Digest:
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
                return os.open(node.comps[-1], READ_FLAGS, dir_fd=ev.parent_fd)
            return fs.open_file(node.comps)

        content = fs.source.content_cache.content_digest(st, opener)
    return entry_digest(
        name=label, st=st, uid=uid, gid=gid, linkname=linkname, xattrs=xattrs, content=content
    )


def copy_source_digest(
    source: FileSource, step: CopyStep, *, fetcher: UrlFetcher | None = None
) -> CopySourceDigest:
    """The cache input of ``step``: content and metadata (no mtime) of what it reads.

    Missing literal sources raise ``ContextError`` (BuildKit's ``failed to calculate checksum
    of ref ...: "/x": not found``). URLs are downloaded unless ``--checksum`` pins them; pass
    the same ``fetcher`` to ``apply_copy`` to download once. Errors carry the step's span.
    """
    return _source_digest(source, Selection.of(step), span=step.span, fetcher=fetcher)


_PROBE_FILES = 16


def content_unknown(source: FileSource, step: CopyStep, *, fetcher: UrlFetcher) -> bool:
    """Whether ``step`` reads the context's files with none of their content known: the first
    regular files it reads (up to 16) all miss the content cache. A COPY then copies first and
    computes its cache input afterwards, from the hashes the copy took (``scheduler``). False
    when the sources cannot be read: the cache input then reports the error."""
    try:
        sources = collect_sources(source, Selection.of(step), fetcher=fetcher, download=False)
    except (BuildError, OSError):
        return False
    try:
        excludes = exclude_matcher(Selection.of(step))
        misses = 0
        for item in sources.items:
            for _, ev in iter_item(item, excludes, sources.required, set()):
                st = ev.node.st
                if not stat.S_ISREG(st.st_mode):
                    continue
                if source.content_cache.cached(st) is not None:
                    return False
                misses += 1
                if misses >= _PROBE_FILES:
                    return True
    except (BuildError, OSError):
        return False
    finally:
        sources.close()
    return misses > 0


def mount_source_digest(source: FileSource, path: str) -> CopySourceDigest:
    """The cache input of a RUN bind mount of ``path`` in ``source``: what a COPY of it reads."""
    return _source_digest(source, Selection.of_mount(path), span=None, fetcher=None)


def _source_digest(
    source: FileSource, selection: Selection, *, span: Span | None, fetcher: UrlFetcher | None
) -> CopySourceDigest:
    own_fetcher = fetcher is None
    fetch = fetcher if fetcher is not None else UrlFetcher()
    try:
        sources = collect_sources(source, selection, fetcher=fetch, download=False)
        try:
            files: list[tuple[str, Digest]] = []
            lines: list[str] = ["pybuild copy-source v1"]
            excludes = exclude_matcher(selection)
            seen: set[int] = set()
            for item in sources.items:
                lines.append(f"source {item.group} {item.label}")
                for label, ev in iter_item(item, excludes, sources.required, seen):
                    dgst = _entry_digest(item, label, ev)
                    files.append((label, dgst))
                    lines.append(f"{label}\x00{dgst}{' lazy' if ev.lazy else ''}")
            check_required(source, sources, seen)
            for url, dgst in sources.pinned:
                files.append((url, dgst))
                lines.append(f"pinned {url}\x00{dgst}")
            source.content_cache.flush()
        finally:
            sources.close()
    except BuildError as err:
        if span is not None:
            raise with_span(err, span) from None
        raise
    except OSError as exc:
        where = f": {exc.filename}" if exc.filename else ""
        raise ExecutionError(
            f"{selection.command}: reading the sources failed: {exc.strerror or exc}{where}",
            span=span,
        ) from None
    finally:
        if own_fetcher:
            fetch.close()
    return CopySourceDigest(
        digest=Digest.of_bytes("\n".join(lines).encode("utf-8", "surrogateescape")),
        files=tuple(files),
    )
