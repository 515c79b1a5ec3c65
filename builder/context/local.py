"""The local build context: a directory plus its ``.dockerignore`` filter.

The ignore file is ``<Dockerfile>.dockerignore`` beside the Dockerfile when that exists (it
then replaces the context's ``.dockerignore``; they are not merged, moby/buildkit#901), else
``.dockerignore`` at the context root. The root ignore file is read in-root, so a symlinked
``.dockerignore`` cannot make pybuild read outside the context. Files are seen as owned by
0:0, as BuildKit's context transfer sends them.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from builder.context.checksum import ContentCache
from builder.context.ignore import PatternMatcher, load_ignore_file
from builder.context.sourcefs import DirectorySource, SourceFS
from builder.errors import ContextError
from builder.fs.root import FileTooLargeError, NotRegularFileError, Root

IGNORE_FILE: Final = ".dockerignore"
MAX_IGNORE_BYTES: Final = 16 << 20


@dataclass(frozen=True, slots=True, kw_only=True)
class LocalContext:
    """A directory build context. Use ``LocalContext.open``; ``close`` saves the checksum cache."""

    root: Path
    matcher: PatternMatcher | None = None
    ignore_file: Path | None = None
    name: str = "context"
    owner: tuple[int, int] | None = (0, 0)
    content_cache: ContentCache = field(default_factory=ContentCache)

    @classmethod
    def open(
        cls,
        directory: Path,
        dockerfile: Path | None = None,
        *,
        state_dir: Path | None = None,
    ) -> LocalContext:
        """Open ``directory`` as the context of a build of ``dockerfile`` (may be anywhere).

        ``state_dir`` keeps the content-checksum cache between builds.
        """
        try:
            st = os.stat(directory)
        except OSError as exc:
            raise ContextError(
                f"unable to prepare context: path {os.fspath(directory)!r} not found"
                f" ({exc.strerror})"
            ) from None
        if not stat.S_ISDIR(st.st_mode):
            raise ContextError(
                f"unable to prepare context: context must be a directory: {os.fspath(directory)}"
            )
        root = Path(os.path.abspath(directory))
        matcher: PatternMatcher | None = None
        ignore_path: Path | None = None
        data: bytes | None = None
        if dockerfile is not None:
            candidate = Path(os.fspath(dockerfile) + IGNORE_FILE)
            inside = Path(os.path.abspath(candidate))
            # inside the context (always so for remote ones): read in-root, like .dockerignore
            data = (
                _read_in_root(root, inside.relative_to(root).as_posix())
                if inside.is_relative_to(root)
                else _read_regular(candidate)
            )
            if data is not None:
                ignore_path = candidate
        if data is None:
            data = _read_root_ignore(root)
            if data is not None:
                ignore_path = root / IGNORE_FILE
        if data is not None and ignore_path is not None:
            matcher = load_ignore_file(data, name=ignore_path.name) or None
        cache = ContentCache(state_dir)
        return cls(root=root, matcher=matcher, ignore_file=ignore_path, content_cache=cache)

    def excluded(self, rel: str) -> bool:
        """Whether ``.dockerignore`` excludes ``rel`` (a ``/``-separated path in the context)."""
        rel = rel.strip("/")
        return bool(rel) and self.matcher is not None and self.matcher.walk_match(rel)

    def close(self) -> None:
        self.content_cache.close()

    def __enter__(self) -> LocalContext:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_regular(path: Path) -> bytes | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ContextError(f"cannot read {os.fspath(path)}: {exc.strerror}") from None
    return _read_fd(fd, path.name)


def _read_in_root(root: Path, rel: str) -> bytes | None:
    try:
        with Root(root) as tree:
            return tree.read(rel, limit=MAX_IGNORE_BYTES)
    except FileTooLargeError:
        raise ContextError(f"{rel} is larger than {MAX_IGNORE_BYTES} bytes") from None
    except NotRegularFileError:
        raise ContextError(f"{rel} is not a regular file") from None
    except OSError as exc:
        raise ContextError(f"cannot read {rel}: {exc.strerror}") from None


def _read_root_ignore(root: Path) -> bytes | None:
    with SourceFS(DirectorySource(root=root, name="context")) as fs:
        node = fs.resolve(IGNORE_FILE, follow=True)
        if node is None or not stat.S_ISREG(node.st.st_mode):
            return None
        return _read_fd(fs.open_file(node.comps), IGNORE_FILE)


def _read_fd(fd: int, name: str) -> bytes | None:
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            return None
        if not stat.S_ISREG(st.st_mode):
            raise ContextError(f"{name} is not a regular file")
        if st.st_size > MAX_IGNORE_BYTES:
            raise ContextError(f"{name} is larger than {MAX_IGNORE_BYTES} bytes")
        chunks: list[bytes] = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
