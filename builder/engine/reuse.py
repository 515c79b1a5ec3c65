"""Incremental COPY: files whose source did not change are hard links into the previous layer.

When a COPY misses the cache only because some of its source files changed, the layer
directory of the previous build of that same step (same instruction, same parent, same set of
source paths) already holds every other file exactly as this build would write it. Layer
directories are immutable once adopted (overlayfs lowers, never written), so the new layer
directory may share those inodes: a hard link replaces creating the file and copying its bytes.
The layer tar is unaffected (hard links across directories are invisible inside one tree).

A link is made only when the old file is a regular file whose mode, owner, mtime and size are
what this copy would give the new one, and its content is known equal (the source's content
digest is unchanged since that build; xattrs are part of that digest). An inode is linked at
most once per copy, so two files that were hard links of each other in the old layer never
become links in the new one unless the sources are. Anything unexpected (the old directory
pruned meanwhile, a different file there) falls back to copying.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from builder.fs.root import Root

_FALLBACK: Final = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.EMLINK, errno.EXDEV)


@dataclass(frozen=True, slots=True, kw_only=True)
class CopyReuse:
    """The previous layer directory of a COPY and the source labels unchanged since."""

    root: Path
    labels: frozenset[str]


class PreviousLayer:
    """Hard links from the previous layer directory (see the module docstring)."""

    def __init__(self, reuse: CopyReuse) -> None:
        self.labels = reuse.labels
        self._root = Root(reuse.root)
        self._parent: tuple[tuple[str, ...], int | None] | None = None
        self._used: set[tuple[int, int]] = set()
        self.linked = 0

    def close(self) -> None:
        self._set_parent(None)
        self._root.close()

    def _set_parent(self, entry: tuple[tuple[str, ...], int | None] | None) -> None:
        if self._parent is not None and self._parent[1] is not None:
            os.close(self._parent[1])
        self._parent = entry

    def _parent_fd(self, comps: tuple[str, ...]) -> int | None:
        if self._parent is not None and self._parent[0] == comps:
            return self._parent[1]
        fd: int | None
        try:
            fd = self._root.open_dir(comps)  # canonical path, no symlink followed
        except OSError as exc:
            if exc.errno not in _FALLBACK:
                raise
            fd = None
        self._set_parent((comps, fd))
        return fd

    def link(
        self,
        label: str,
        comps: tuple[str, ...],
        parent: int,
        *,
        mode: int,
        uid: int,
        gid: int,
        mtime_ns: int,
        size: int,
    ) -> bool:
        """Link the previous build's file at ``comps`` as ``comps[-1]`` in directory fd
        ``parent``, when it is exactly what copying source ``label`` would write."""
        if label not in self.labels:
            return False
        old = self._parent_fd(comps[:-1])
        if old is None:
            return False
        try:
            st = os.stat(comps[-1], dir_fd=old, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in _FALLBACK:
                return False
            raise
        inode = (st.st_dev, st.st_ino)
        if not (
            stat.S_ISREG(st.st_mode)
            and stat.S_IMODE(st.st_mode) == mode & 0o7777
            and (st.st_uid, st.st_gid) == (uid, gid)
            and st.st_mtime_ns == mtime_ns
            and st.st_size == size
            and inode not in self._used
        ):
            return False
        try:
            os.link(comps[-1], comps[-1], src_dir_fd=old, dst_dir_fd=parent, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in _FALLBACK:
                return False
            raise
        self._used.add(inode)
        self.linked += 1
        return True
