"""The one in-root walk: paths resolved inside a directory tree with chroot semantics.

Resolution (``resolve_components``) works on component tuples: ``..`` never climbs above the
root (or above ``base``), a symlink is read and its target resolved by this code, an absolute
target restarting from the root, as ``openat2(RESOLVE_IN_ROOT)`` and filepath-securejoin do.
A missing component and everything lexically below it is kept as written (continuity's
``RootPath``), so ``missing/../x`` is ``x``; a component that exists and is not a directory
cannot have children (``'f' is not a directory``).

Access (``Root``) only ever opens canonical paths, and opens them one component at a time
relative to the parent's directory fd with ``O_NOFOLLOW``: if a directory is swapped for a
symlink after resolution, the open fails (``ELOOP``/``ENOTDIR``) instead of leaving the root.
No path built from untrusted input is handed to the kernel whole, and no containment check is a
string prefix test. Every caller reads, creates and walks trees through this module: layer
apply, COPY destinations and sources, RUN mount targets and working directories, user lookup.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from builder.fs.paths import split

__all__ = [
    "CREATE_FLAGS",
    "DIR_FLAGS",
    "MAX_SYMLINK_HOPS",
    "PATH_FLAGS",
    "READ_FLAGS",
    "Dir",
    "Entry",
    "FileTooLargeError",
    "NotRegularFileError",
    "Root",
    "chmod_nofollow",
    "clear_dir_at",
    "ignorable_metadata_error",
    "lstat_at",
    "remove_at",
    "resolve_components",
]

Comps = tuple[str, ...]

MAX_SYMLINK_HOPS: Final = 255  # Linux's MAXSYMLINKS is 40; securejoin and BuildKit allow 255
# a directory below a root: never through a symlink
DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# a file to read: never through a symlink, and a FIFO swapped in cannot block the open
READ_FLAGS: Final = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
# a new file: must not exist yet (no symlink or hard link planted in its place is written)
CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
# a handle that only names an object (fchmod/fstat/mount by /proc/self/fd), not a symlink target
PATH_FLAGS: Final = os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC
# the root itself is the caller's host path (a context directory may be a symlink): followed
_TOP_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


class NotRegularFileError(OSError):
    """``Root.read`` found something other than a regular file."""


class FileTooLargeError(OSError):
    """``Root.read`` found a file larger than its limit."""


def _not_a_directory(name: str) -> NotADirectoryError:
    return NotADirectoryError(errno.ENOTDIR, f"{name!r} is not a directory")


def _too_many_links() -> OSError:
    return OSError(errno.ELOOP, "too many levels of symbolic links")


@dataclass(frozen=True, slots=True)
class Entry:
    """A resolved path: canonical components (no symlink in them, except the last one when it
    was not followed), the lstat of the last one (None when it does not exist), and how many
    leading components exist (all of them when ``st`` is set)."""

    comps: Comps
    st: os.stat_result | None
    found: int

    @property
    def path(self) -> str:
        return "/" + "/".join(self.comps)

    @property
    def is_dir(self) -> bool:
        return self.st is not None and stat.S_ISDIR(self.st.st_mode)


def resolve_components(
    rel: Sequence[str],
    *,
    lstat: Callable[[Comps], os.stat_result | None],
    readlink: Callable[[Comps], str],
    follow_final: bool = True,
    base: Comps = (),
    on_link: Callable[[Comps, os.stat_result], None] | None = None,
) -> Entry:
    """Resolve ``base + rel`` inside ``base`` over any tree view (the one algorithm).

    ``lstat(comps)`` is called only for canonical paths whose parent exists and is a
    directory; it returns None when the entry is missing. ``readlink`` is called for symlinks,
    after ``on_link`` (which may raise to refuse following one).
    Raises ``NotADirectoryError`` for a child of a non-directory and ``OSError(ELOOP)`` after
    ``MAX_SYMLINK_HOPS`` links.
    """
    stack: list[str] = list(base)
    sts: list[os.stat_result | None] = []  # lstat of stack[len(base):]
    missing_at: int | None = None  # index in stack of the first missing component
    pending = list(reversed(rel))
    hops = 0
    while pending:
        comp = pending.pop()
        if comp in ("", "."):
            continue
        if comp == "..":
            if len(stack) > len(base):
                stack.pop()
                sts.pop()
                if missing_at is not None and len(stack) <= missing_at:
                    missing_at = None
            continue
        if sts and sts[-1] is not None and not stat.S_ISDIR(sts[-1].st_mode):
            raise _not_a_directory(stack[-1])
        comps = (*stack, comp)
        st = lstat(comps) if missing_at is None else None
        if st is not None and stat.S_ISLNK(st.st_mode) and (pending or follow_final):
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                raise _too_many_links()
            if on_link is not None:
                on_link(comps, st)
            target = readlink(comps)
            if target.startswith("/"):
                del stack[len(base) :]
                sts.clear()
                missing_at = None
            pending.extend(reversed(split(target)))
            continue
        if st is None and missing_at is None:
            missing_at = len(stack)
        stack.append(comp)
        sts.append(st)
    if not sts:
        return Entry(tuple(stack), lstat(tuple(stack)), len(stack))
    found = missing_at if missing_at is not None else len(stack)
    return Entry(tuple(stack), sts[-1], found)


class _Chain:
    """Directory fds along one canonical path, kept while a walk moves down and up it."""

    def __init__(self, top: int) -> None:
        self.top = top
        self.names: list[str] = []
        self.fds: list[int] = []

    def dir(self, comps: Comps) -> int:
        """A borrowed fd of directory ``comps`` (valid until the next call)."""
        keep = 0
        limit = min(len(self.names), len(comps))
        while keep < limit and self.names[keep] == comps[keep]:
            keep += 1
        while len(self.names) > keep:
            self.names.pop()
            os.close(self.fds.pop())
        for name in comps[keep:]:
            fd = os.open(name, DIR_FLAGS, dir_fd=self.fds[-1] if self.fds else self.top)
            self.names.append(name)
            self.fds.append(fd)
        return self.fds[-1] if self.fds else self.top

    def lstat(self, comps: Comps) -> os.stat_result | None:
        if not comps:
            return os.fstat(self.top)
        try:
            return os.stat(comps[-1], dir_fd=self.dir(comps[:-1]), follow_symlinks=False)
        except FileNotFoundError:
            return None

    def readlink(self, comps: Comps) -> str:
        return os.readlink(comps[-1], dir_fd=self.dir(comps[:-1]))

    def take(self, comps: Comps) -> int:
        """An fd of directory ``comps`` that the caller owns (the chain forgets it)."""
        self.dir(comps)
        if not comps:
            return os.open(".", DIR_FLAGS, dir_fd=self.top)
        self.names.pop()
        return self.fds.pop()

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.names.clear()
        self.fds.clear()


def _resolve(
    chain: _Chain,
    path: str | Sequence[str],
    follow_final: bool,
    on_link: Callable[[Comps, os.stat_result], None] | None = None,
) -> Entry:
    rel = split(path) if isinstance(path, str) else path
    return resolve_components(
        rel,
        lstat=chain.lstat,
        readlink=chain.readlink,
        follow_final=follow_final,
        on_link=on_link,
    )


@dataclass(slots=True)
class Dir:
    """An open directory inside a root: its fd (the holder closes it), canonical path, and the
    directories ``Root.mkdir_all`` created on the way (shallowest first)."""

    fd: int
    comps: Comps
    created: tuple[Comps, ...] = ()

    def close(self) -> None:
        os.close(self.fd)


class Root:
    """A directory tree opened once; every path below it is resolved and opened in-root."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self.fd = os.open(self.path, _TOP_FLAGS)

    def close(self) -> None:
        os.close(self.fd)

    def __enter__(self) -> Root:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- resolution -----------------------------------------------------------------------

    def resolve(
        self,
        path: str | Sequence[str],
        *,
        follow_final: bool = True,
        on_link: Callable[[Comps, os.stat_result], None] | None = None,
    ) -> Entry:
        """``path`` (a string or components, ``/`` = this root) resolved in-root; ``on_link``
        sees each symlink before it is followed and may raise to stop."""
        chain = _Chain(self.fd)
        try:
            return _resolve(chain, path, follow_final, on_link)
        finally:
            chain.close()

    def lstat(self, comps: Comps) -> os.stat_result | None:
        """lstat of canonical ``comps`` (no symlink followed anywhere); None when missing."""
        chain = _Chain(self.fd)
        try:
            return chain.lstat(comps)
        except (NotADirectoryError, FileNotFoundError):
            return None
        finally:
            chain.close()

    # --- access to canonical paths --------------------------------------------------------

    def open_dir(self, comps: Comps) -> int:
        """A new fd of directory ``comps``; a symlink or non-directory on the way raises."""
        chain = _Chain(self.fd)
        try:
            return chain.take(comps)
        finally:
            chain.close()

    def open_file(self, comps: Comps, flags: int = READ_FLAGS, mode: int = 0o644) -> int:
        """A new fd of ``comps[-1]`` opened with ``flags`` in directory ``comps[:-1]``."""
        parent = self.open_dir(comps[:-1])
        try:
            return os.open(comps[-1], flags, mode, dir_fd=parent)
        finally:
            os.close(parent)

    def readlink(self, comps: Comps) -> str:
        parent = self.open_dir(comps[:-1])
        try:
            return os.readlink(comps[-1], dir_fd=parent)
        finally:
            os.close(parent)

    # --- whole operations -----------------------------------------------------------------

    def read(self, path: str, *, limit: int) -> bytes | None:
        """The bytes of regular file ``path`` (symlinks followed in-root), None when missing.

        Raises ``NotRegularFileError`` or ``FileTooLargeError`` (more than ``limit`` bytes).
        """
        try:
            entry = self.resolve(path)
        except NotADirectoryError:
            return None
        if entry.st is None:
            return None
        if not stat.S_ISREG(entry.st.st_mode):
            raise NotRegularFileError(errno.EINVAL, "not a regular file")
        fd = self.open_file(entry.comps)
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise NotRegularFileError(errno.EINVAL, "not a regular file")
            data = f.read(limit + 1)
        if len(data) > limit:
            raise FileTooLargeError(errno.EFBIG, f"exceeds {limit} bytes")
        return data

    def open_resolved_dir(self, path: str | Sequence[str]) -> Dir | None:
        """Directory ``path`` (symlinks followed in-root) opened, or None when missing."""
        chain = _Chain(self.fd)
        try:
            entry = _resolve(chain, path, True)
            if entry.st is None:
                return None
            if not stat.S_ISDIR(entry.st.st_mode):
                raise _not_a_directory(entry.comps[-1])
            return Dir(fd=chain.take(entry.comps), comps=entry.comps)
        finally:
            chain.close()

    def mkdir_all(
        self,
        path: str | Sequence[str],
        *,
        mode: int = 0o755,
        owner: tuple[int, int] | None = None,
    ) -> Dir:
        """``mkdir -p`` in-root: the directory ``path`` opened, creating what is missing with
        ``mode`` (less the umask) and, when given, ``owner`` (uid, gid)."""
        chain = _Chain(self.fd)
        try:
            entry = _resolve(chain, path, True)
            if entry.st is not None and not stat.S_ISDIR(entry.st.st_mode):
                raise _not_a_directory(entry.comps[-1])
            fd = chain.take(entry.comps[: entry.found])
        finally:
            chain.close()
        created: list[Comps] = []
        try:
            for depth in range(entry.found, len(entry.comps)):
                name = entry.comps[depth]
                made = True
                try:
                    os.mkdir(name, mode, dir_fd=fd)
                except FileExistsError:
                    made = False
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
                if made:
                    created.append(entry.comps[: depth + 1])
                    if owner is not None:
                        os.fchown(fd, *owner)
        except BaseException:
            os.close(fd)
            raise
        return Dir(fd=fd, comps=entry.comps, created=tuple(created))


# --- operations on one directory entry (names relative to a directory fd) -------------------


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
    top = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
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
                    cfd = os.open(child, DIR_FLAGS, dir_fd=fd)
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
    fd = os.open(name, PATH_FLAGS, dir_fd=dir_fd)
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
