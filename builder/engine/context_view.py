"""What ``RUN --mount=type=bind`` sees of the build context: the ``.dockerignore``-filtered tree.

BuildKit sends a filtered copy of the context, so an ignored file cannot be read through a
bind mount. pybuild reads the context in place; to hide the same files without copying the
context, the mount's source is a read-only overlay of the context directory under a *mask*
layer holding an overlay whiteout (a 0/0 character device) for each ignored entry. The walk
that finds them follows BuildKit's context walker (``PatternMatcher.match`` with the parent's
results): an ignored directory is hidden whole unless a ``!`` exception may re-include
something below it, in which case the walk goes on inside it and hides its ignored children
one by one. Directories the mask needs as parents of its whiteouts copy the mode, owner and
times of the context's directory, since overlayfs shows the topmost layer's attributes.

With no ``.dockerignore`` (or nothing in the context it ignores) the context directory itself
is the mount's source. The cache key already covers exactly this view: a bind mount's inputs
are digested like a COPY of its source, which skips ignored files the same way.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from builder.context.ignore import MatchInfo, PatternMatcher
from builder.context.sourcefs import FileSource
from builder.errors import ExecutionError
from builder.snapshot.base import Snapshotter

__all__ = ["hidden_entries", "visible_context"]


def hidden_entries(root: Path, matcher: PatternMatcher) -> tuple[str, ...]:
    """The ``/``-separated paths under ``root`` to hide, parents before children; an ignored
    directory is listed alone unless an exception may re-include something below it."""
    out: list[str] = []

    def walk(directory: Path, prefix: str, parent: MatchInfo | None) -> None:
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise ExecutionError(
                f"reading the build context failed: {exc.strerror}: {directory}"
            ) from None
        for entry in entries:
            rel = prefix + entry.name
            excluded, info = matcher.match(rel, parent)
            is_dir = entry.is_dir(follow_symlinks=False)
            if excluded and not (is_dir and matcher.may_reinclude_below(rel)):
                out.append(rel)
            elif is_dir:
                walk(Path(entry.path), rel + "/", info)

    walk(root, "", None)
    return tuple(out)


def _copy_attributes(source: Path, target: Path) -> None:
    st = source.lstat()
    os.chown(target, st.st_uid, st.st_gid, follow_symlinks=False)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _write_mask(root: Path, mask: Path, hidden: tuple[str, ...]) -> None:
    """Whiteouts for ``hidden`` in ``mask``, parents shaped like the context's directories."""
    parents: set[str] = set()
    for rel in hidden:
        directory = rel.rpartition("/")[0]
        if directory:
            (mask / directory).mkdir(parents=True, exist_ok=True)
            parts = directory.split("/")
            parents.update("/".join(parts[: k + 1]) for k in range(len(parts)))
        os.mknod(mask / rel, stat.S_IFCHR | 0o000, os.makedev(0, 0))
    for directory in sorted(parents, key=lambda d: d.count("/"), reverse=True):
        _copy_attributes(root / directory, mask / directory)
    _copy_attributes(root, mask)


@contextlib.contextmanager
def visible_context(context: FileSource, snapshotter: Snapshotter) -> Iterator[Path]:
    """A directory showing ``context`` as ``.dockerignore`` leaves it, for bind mounts; it
    stays mounted (read-only) until the ``with`` ends."""
    matcher = context.matcher
    hidden = hidden_entries(context.root, matcher) if matcher is not None else ()
    if not hidden:
        yield context.root
        return
    with snapshotter.scratch_dir() as mask:
        _write_mask(context.root, mask, hidden)
        with snapshotter.mount([context.root, mask], None) as merged:
            yield merged
