"""What COPY/ADD read from: a file tree with an exclusion filter, read strictly in-root.

``FileSource`` is the protocol: the build context (``LocalContext``, with ``.dockerignore``) or
a stage/image root filesystem (``DirectorySource``). ``SourceFS`` reads one: every path is
walked component by component from a directory fd with ``O_NOFOLLOW``; symlinks met on the way
are resolved by this code with ``/`` and ``..`` clamped to the source root, so nothing outside
the root is ever opened. Excluded entries are invisible: an excluded file does not exist, also
when reached through a symlink; an excluded directory exists only when something below it was
re-included by a ``!`` exception (BuildKit's context transfer sends exactly that).
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from builder.context.checksum import ContentCache
from builder.context.ignore import MatchInfo, PatternMatcher
from builder.errors import ContextError
from builder.fs.root import Root
from builder.oci.xattrs import kept_xattr


class FileSource(Protocol):
    """A tree COPY/ADD reads from.

    ``matcher`` is the exclusion filter (``.dockerignore``) or None; ``owner`` replaces every
    file's uid/gid when set (BuildKit sends the context as 0:0); ``content_cache`` remembers
    content digests between reads.
    """

    @property
    def root(self) -> Path: ...

    @property
    def name(self) -> str: ...

    @property
    def matcher(self) -> PatternMatcher | None: ...

    @property
    def owner(self) -> tuple[int, int] | None: ...

    @property
    def content_cache(self) -> ContentCache: ...

    def excluded(self, rel: str) -> bool: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DirectorySource:
    """A plain directory read as is: a stage's or image's root filesystem (``COPY --from``)."""

    root: Path
    name: str = "rootfs"
    matcher: PatternMatcher | None = None
    owner: tuple[int, int] | None = None
    content_cache: ContentCache = field(default_factory=ContentCache)

    def excluded(self, rel: str) -> bool:
        return self.matcher is not None and self.matcher.walk_match(rel.strip("/"))


def list_xattrs(dir_fd: int, name: str) -> tuple[tuple[str, bytes], ...]:
    """The xattrs of ``name`` (not followed) worth copying; empty when unsupported."""
    path = f"/proc/self/fd/{dir_fd}/{name}"
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return ()
    out: list[tuple[str, bytes]] = []
    for key in names:
        if not kept_xattr(key):  # the allowlist of layers (SECURITY.md)
            continue
        try:
            out.append((key, os.getxattr(path, key, follow_symlinks=False)))
        except OSError:
            continue
    return tuple(sorted(out))


@dataclass(frozen=True, slots=True)
class Node:
    """An entry of a source: its canonical path (no symlinks in it) and its lstat."""

    comps: tuple[str, ...]
    st: os.stat_result

    @property
    def is_dir(self) -> bool:
        return stat.S_ISDIR(self.st.st_mode)

    @property
    def rel(self) -> str:
        return "/".join(self.comps)


IgnoreState = tuple[bool, MatchInfo]


class SourceFS:
    """An open, read-only, in-root view of a ``FileSource``."""

    def __init__(self, source: FileSource) -> None:
        self.source = source
        try:
            self.root = Root(source.root)
        except OSError as exc:
            raise ContextError(
                f"cannot open {source.name} {os.fspath(source.root)!r}: {exc.strerror}"
            ) from None
        self.matcher = source.matcher if source.matcher else None
        self._states: dict[tuple[str, ...], IgnoreState] = {}

    def close(self) -> None:
        self.root.close()

    def __enter__(self) -> SourceFS:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def owner(self) -> tuple[int, int] | None:
        return self.source.owner

    # --- exclusion ----------------------------------------------------------------------------

    def ignore_state(self, comps: tuple[str, ...]) -> IgnoreState | None:
        """The ignore verdict and MatchInfo of ``comps``, computed from the root down."""
        if self.matcher is None or not comps:
            return None
        cached = self._states.get(comps)
        if cached is not None:
            return cached
        parent = self.ignore_state(comps[:-1])
        state = self.child_state(parent, comps)
        if len(self._states) < 65536:
            self._states[comps] = state
        return state

    def child_state(self, parent: IgnoreState | None, comps: tuple[str, ...]) -> IgnoreState:
        assert self.matcher is not None
        return self.matcher.match("/".join(comps), parent[1] if parent else None)

    def hidden(self, node: Node, state: IgnoreState | None = None) -> bool:
        """Whether the exclusion filter removes ``node`` from the view."""
        if self.matcher is None or not node.comps:
            return False
        if state is None:
            state = self.ignore_state(node.comps)
        assert state is not None
        if not state[0]:
            return False
        return not (node.is_dir and self.has_visible_descendant(node.comps, state))

    def has_visible_descendant(self, comps: tuple[str, ...], state: IgnoreState) -> bool:
        """Whether an excluded directory holds anything a ``!`` exception brings back."""
        assert self.matcher is not None
        if not self.matcher.may_reinclude_below("/".join(comps)):
            return False
        todo: list[tuple[tuple[str, ...], IgnoreState]] = [(comps, state)]
        while todo:
            dcomps, dstate = todo.pop()
            try:
                fd = self.open_dir(dcomps)
            except OSError:
                continue
            try:
                for name, st in scan(fd):
                    ccomps = (*dcomps, name)
                    cstate = self.child_state(dstate, ccomps)
                    if not cstate[0]:
                        return True
                    if stat.S_ISDIR(st.st_mode) and self.matcher.may_reinclude_below(
                        "/".join(ccomps)
                    ):
                        todo.append((ccomps, cstate))
            finally:
                os.close(fd)
        return False

    # --- reading ------------------------------------------------------------------------------

    def open_dir(self, comps: tuple[str, ...]) -> int:
        """A new fd for directory ``comps`` (canonical); raises OSError if it is not one."""
        return self.root.open_dir(comps)

    def open_file(self, comps: tuple[str, ...]) -> int:
        return self.root.open_file(comps)

    def readlink(self, comps: tuple[str, ...]) -> str:
        return self.root.readlink(comps)

    def xattrs(self, comps: tuple[str, ...]) -> tuple[tuple[str, bytes], ...]:
        if not comps:
            return ()
        try:
            parent = self.open_dir(comps[:-1])
        except OSError:
            return ()
        try:
            return list_xattrs(parent, comps[-1])
        finally:
            os.close(parent)

    def resolve(self, path: str, *, follow: bool) -> Node | None:
        """Find ``path`` in-root; None when missing, excluded, or not a directory on the way.

        Symlinks in the middle are always followed (inside the root); the last component is
        followed when ``follow``. An excluded symlink is not followed: it does not exist.
        """

        def on_link(comps: tuple[str, ...], st: os.stat_result) -> None:
            if self.hidden(Node(comps, st)):
                raise _Hidden

        try:
            entry = self.root.resolve(path, follow_final=follow, on_link=on_link)
        except (_Hidden, NotADirectoryError):
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ContextError(f"{path}: {exc.strerror}") from None
            raise
        if entry.st is None:
            return None
        node = Node(entry.comps, entry.st)
        return None if self.hidden(node) else node


class _Hidden(Exception):
    """A symlink on the way is excluded by the filter."""


def scan(fd: int) -> list[tuple[str, os.stat_result]]:
    """The entries of directory ``fd``, sorted by name (Go's ``os.ReadDir`` order), lstat'ed."""
    with os.scandir(fd) as it:
        names = sorted((e.name for e in it), key=os.fsencode)
    out: list[tuple[str, os.stat_result]] = []
    for name in names:
        try:
            out.append((name, os.stat(name, dir_fd=fd, follow_symlinks=False)))
        except FileNotFoundError:
            continue
    return out
