"""In-root path resolution with directory fds (chroot semantics, no host escapes).

Every component is opened relative to the fd of its parent with ``O_NOFOLLOW``; symlinks are
read and resolved by this code, with ``/`` and ``..`` clamped to the root, the way
``openat2(RESOLVE_IN_ROOT)`` and filepath-securejoin do. No path string built from untrusted input
is ever handed to the kernel as a whole, and no containment check is a string prefix test.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from dataclasses import dataclass
from typing import Final

from builder.errors import LayerError

MAX_SYMLINK_HOPS: Final = 255
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_components(path: str) -> list[str]:
    return [c for c in path.split("/") if c not in ("", ".")]


@dataclass(slots=True)
class Resolved:
    """An open directory inside the root plus its canonical in-root path (no symlinks)."""

    fd: int
    path: tuple[str, ...]

    def close(self) -> None:
        os.close(self.fd)


class Root:
    """A rootfs directory opened once; resolves paths inside it."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        try:
            self.fd = os.open(os.fspath(path), _DIR_FLAGS)
        except OSError as exc:
            raise LayerError(f"cannot open rootfs {os.fspath(path)!r}: {exc.strerror}") from None
        self.path = os.fspath(path)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def resolve_dir(self, path: str, *, create: bool, entry: str) -> Resolved | None:
        """Open directory ``path`` in-root, following symlinks inside the root.

        Missing components are created (mode 0755) when ``create``, else None is returned.
        A component that is not a directory raises ``LayerError`` naming ``entry``.
        """
        stack: list[tuple[str, int]] = []  # (name, fd) below the root
        pending = split_components(path)
        pending.reverse()
        hops = 0

        def current() -> int:
            return stack[-1][1] if stack else self.fd

        try:
            while pending:
                comp = pending.pop()
                if comp == "..":
                    if stack:
                        os.close(stack.pop()[1])
                    continue
                try:
                    st = os.stat(comp, dir_fd=current(), follow_symlinks=False)
                except FileNotFoundError:
                    if pending and pending[-1] == "..":
                        pending.pop()  # "missing/.." cancels lexically (continuity RootPath)
                        continue
                    if not create:
                        self._close_all(stack)
                        return None
                    with contextlib.suppress(FileExistsError):
                        os.mkdir(comp, 0o755, dir_fd=current())
                    pending.append(comp)
                    continue
                if stat.S_ISLNK(st.st_mode):
                    hops += 1
                    if hops > MAX_SYMLINK_HOPS:
                        raise LayerError(
                            f"layer entry {entry!r}: too many levels of symbolic links"
                        )
                    target = os.readlink(comp, dir_fd=current())
                    if target.startswith("/"):
                        self._close_all(stack)
                    parts = split_components(target)
                    parts.reverse()
                    pending.extend(parts)
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise LayerError(f"layer entry {entry!r}: {comp!r} is not a directory")
                fd = os.open(comp, _DIR_FLAGS, dir_fd=current())
                stack.append((comp, fd))
        except OSError as exc:
            self._close_all(stack)
            raise LayerError(f"layer entry {entry!r}: {exc.strerror}") from None
        except LayerError:
            self._close_all(stack)
            raise
        names = tuple(name for name, _ in stack)
        if not stack:
            return Resolved(fd=os.dup(self.fd), path=())
        for _, fd in stack[:-1]:
            os.close(fd)
        return Resolved(fd=stack[-1][1], path=names)

    @staticmethod
    def _close_all(stack: list[tuple[str, int]]) -> None:
        for _, fd in stack:
            os.close(fd)
        stack.clear()


def lstat_at(dir_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def remove_at(dir_fd: int, name: str) -> None:
    """Remove ``name`` in ``dir_fd`` (a tree if it is a directory) without following links."""
    st = lstat_at(dir_fd, name)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        clear_dir_at(dir_fd, name, keep=frozenset())
        os.rmdir(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _children(fd: int) -> list[str]:
    with os.scandir(fd) as it:
        return [e.name for e in it]


def clear_dir_at(parent_fd: int, name: str, *, keep: frozenset[str]) -> None:
    """Remove every child of directory ``name`` except those in ``keep``.

    Iterative fd walk (no recursion limit, never follows a symlink: each directory is opened
    with ``O_NOFOLLOW`` relative to its parent's fd).
    """
    top = os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    stack: list[tuple[int, list[str], str]] = [
        (top, [c for c in _children(top) if c not in keep], name)
    ]
    try:
        while stack:
            fd, children, _ = stack[-1]
            if children:
                child = children.pop()
                st = lstat_at(fd, child)
                if st is None:
                    continue
                if stat.S_ISDIR(st.st_mode):
                    cfd = os.open(child, _DIR_FLAGS, dir_fd=fd)
                    stack.append((cfd, _children(cfd), child))
                else:
                    os.unlink(child, dir_fd=fd)
                continue
            fd, _, dname = stack.pop()
            os.close(fd)
            if stack:
                os.rmdir(dname, dir_fd=stack[-1][0])
    finally:
        for fd, _, _ in stack:
            os.close(fd)


def chmod_nofollow(dir_fd: int, name: str, mode: int) -> None:
    """chmod an object that is not a symlink, through an ``O_PATH`` fd (no path re-walk)."""
    fd = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if stat.S_ISLNK(os.fstat(fd).st_mode):
            return
        try:
            os.chmod(f"/proc/self/fd/{fd}", mode)
        except FileNotFoundError:  # no /proc: fall back to fchmodat on the verified name
            os.chmod(name, mode, dir_fd=dir_fd)
    finally:
        os.close(fd)


def ignorable_metadata_error(exc: OSError) -> bool:
    """Ownership/xattr failures an unprivileged extractor skips instead of failing."""
    return exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EINVAL)
