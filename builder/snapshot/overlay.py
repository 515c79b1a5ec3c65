"""overlayfs mounts of layer directories, and the mount stubs a RUN leaves in its upper dir.

Mounting uses the ``mount(2)``/``umount2(2)`` syscalls through ctypes, not the ``mount`` binary:
errno comes back exact (EPERM/ENODEV become ``EnvironmentUnavailableError``), no option
string is re-parsed by util-linux, and no child process or ``chdir`` is needed. Every
directory in the option string is passed as ``/proc/self/fd/N`` of an ``O_PATH`` descriptor we
hold during the call: the string stays short whatever the store path (18 bytes a lower, so
~200 lowers fit the one-page limit of mount data, Docker's own limit is 125), no path
character (``,``, ``:``, ``\\``) ever needs escaping, and the kernel resolves each fd to the
directory we opened (no symlink swap between our check and the mount).

Mount stubs: runc creates a mount's destination when it is missing, and those creations land in
the upper dir. ``prepare_mountpoints`` creates every destination ourselves before the container
starts (in-root, never following a symlink out of the rootfs; the canonical, symlink-free
destination is what runc gets), recording what it created; ``clean_upper`` removes exactly
those stubs afterwards when they are still empty, plus directories that were only copied up
because a stub was created inside them, so no ``/proc``, ``/etc/resolv.conf`` or mount-target
residue ever reaches a layer.

Init layer: the runtime mounts ``/proc``, ``/dev`` and ``/sys`` itself, following a symlink the
image put there; ``init_layer`` puts plain directories above such an image (moby's init layer).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import stat
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from builder.errors import EnvironmentUnavailableError, ExecutionError
from builder.fs import paths
from builder.fs.root import CREATE_FLAGS, DIR_FLAGS, PATH_FLAGS, Entry, Root
from builder.store.locks import locked_dir
from builder.timings import phase

MS_RDONLY: Final = 0x1
MS_NOSUID: Final = 0x2
MS_NODEV: Final = 0x4
MS_REMOUNT: Final = 0x20
MS_BIND: Final = 0x1000
MS_REC: Final = 0x4000
MNT_DETACH: Final = 0x2
UMOUNT_NOFOLLOW: Final = 0x8

MOUNT_DATA_LIMIT: Final = 4095  # one page including the terminating NUL
PRIVATE_PREFIX: Final = ".ovl-"
_OPAQUE_XATTRS: Final = ("trusted.overlay.opaque", "user.overlay.opaque")
# overlayfs module parameters whose "Y" default would make an upper dir an incomplete diff
_UNSAFE_DEFAULTS: Final = (
    ("redirect_dir", "redirect_dir=off"),
    ("metacopy", "metacopy=off"),
    ("index", "index=off"),
)


# --------------------------------------------------------------------------- syscalls


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def sys_mount(source: str, target: str, fstype: str | None, flags: int, data: str | None) -> None:
    """``mount(2)``; raises ``OSError`` with the errno."""
    libc = _libc()
    libc.mount.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulong,
        ctypes.c_char_p,
    ]
    rc = libc.mount(
        os.fsencode(source),
        os.fsencode(target),
        fstype.encode() if fstype is not None else None,
        flags,
        os.fsencode(data) if data is not None else None,
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def sys_umount(target: str, *, detach: bool = False) -> None:
    """``umount2(2)`` (never following a symlink at ``target``)."""
    libc = _libc()
    libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
    flags = UMOUNT_NOFOLLOW | (MNT_DETACH if detach else 0)
    if libc.umount2(os.fsencode(target), flags) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), target)


def _unescape_mountinfo(field: str) -> str:
    if "\\" not in field:  # nothing escaped (the usual case): no walk per character
        return field
    out = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mountpoints() -> tuple[str, ...]:
    """Mount points of this process's mount namespace, in mount order."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return tuple(_unescape_mountinfo(line.split()[4]) for line in f if line.strip())


def mounts_under(directory: Path) -> tuple[str, ...]:
    """Mount points at or below ``directory`` (deepest last), from ``/proc/self/mountinfo``."""
    base = os.path.realpath(directory)
    prefix = base.rstrip("/") + "/"
    return tuple(m for m in mountpoints() if m == base or m.startswith(prefix))


def unmount(target: str) -> None:
    """Unmount ``target``; if it is busy, detach it lazily. Already-unmounted is fine."""
    try:
        sys_umount(target)
    except OSError as exc:
        if exc.errno in (errno.EINVAL, errno.ENOENT):
            return  # not a mount point (any more)
        if exc.errno != errno.EBUSY:
            raise ExecutionError(f"cannot unmount {target}: {exc.strerror}") from None
        try:
            sys_umount(target, detach=True)
        except OSError as exc2:
            raise ExecutionError(f"cannot unmount {target}: {exc2.strerror}") from None


def _mount_error(what: str, target: str, exc: OSError) -> Exception:
    if exc.errno in (errno.EPERM, errno.EACCES):
        return EnvironmentUnavailableError(
            f"cannot mount {what} at {target}: {exc.strerror} (RUN needs root with CAP_SYS_ADMIN)"
        )
    if exc.errno in (errno.ENODEV, errno.ENOSYS):
        return EnvironmentUnavailableError(
            f"cannot mount {what} at {target}: the kernel has no overlay filesystem"
            " (modprobe overlay)"
        )
    return ExecutionError(f"cannot mount {what} at {target}: {exc.strerror}")


def remove_tree(path: Path) -> None:
    """Remove ``path`` recursively without following symlinks; refuse while something is mounted
    below it (rm -rf through a live bind mount would delete the mount's source)."""
    if not os.path.lexists(path):
        return
    if mounts_under(path):
        raise ExecutionError(f"refusing to remove {path}: something is still mounted below it")
    shutil.rmtree(path)


_VOLATILE = [True]  # cleared when the kernel refuses overlayfs's "volatile" (before 5.10)


def overlay_extra_options() -> tuple[str, ...]:
    """Options turning off overlayfs features the module enables by default on this host.

    ``redirect_dir``/``metacopy`` would leave renamed directories and chmod-ed files in the
    upper dir as references to lower content (not a complete diff), ``index`` ties lowers to
    one upper. Only passed when ``/sys/module/overlay/parameters`` says the default is on.
    """
    out = []
    for param, option in _UNSAFE_DEFAULTS:
        try:
            value = Path("/sys/module/overlay/parameters", param).read_text().strip()
        except OSError:
            continue
        if value.upper() in ("Y", "ON", "1"):
            out.append(option)
    return tuple(out)


# --------------------------------------------------------------------------- init layer


def masked_roots(lowers: Sequence[Path], names: Sequence[str]) -> tuple[str, ...]:
    """The top-level ``names`` that the layer stack ``lowers`` (bottom -> top, overlay lower
    form) holds as something other than a directory: a symlink, a file, a device.

    The runtime mounts ``/proc``, ``/dev`` and ``/sys`` itself and would follow a symlink there
    out of the rootfs (CVE-2026-41579's shape); :func:`init_layer` masks them. An absent name
    (never there, a whiteout, hidden by an opaque root) needs no mask: the mount stubs cover it.
    """
    out = []
    for name in names:
        for layer in reversed(lowers):
            try:
                st = os.lstat(layer / name)  # a top-level name of a layer directory we made
            except FileNotFoundError:
                if _is_opaque_path(layer):
                    break
                continue
            whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
            if not stat.S_ISDIR(st.st_mode) and not whiteout:
                out.append(name)
            break
    return tuple(out)


def _is_opaque_path(directory: Path) -> bool:
    fd = os.open(directory, DIR_FLAGS)
    try:
        return _is_opaque(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def init_layer(
    lowers: Sequence[Path],
    names: Sequence[str],
    scratch_dir: Callable[[], AbstractContextManager[Path]],
) -> Iterator[tuple[Path, ...]]:
    """``lowers``, with an init layer on top when :func:`masked_roots` finds some of ``names``
    (moby's ``daemon/initlayer``): an empty directory (mode 0755) for each, above the image's
    symlink, so the runtime mounts inside the rootfs. Being a lower, it never reaches the
    step's layer: the image keeps its own entries. ``scratch_dir`` makes the layer's directory
    (removed when the block ends)."""
    masked = masked_roots(lowers, names)
    if not masked:
        yield tuple(lowers)
        return
    with scratch_dir() as directory:
        for name in masked:
            os.mkdir(directory / name)
            os.chmod(directory / name, 0o755)
        yield (*lowers, directory)


# --------------------------------------------------------------------------- overlay


class Overlay:
    """Mounts layer directories as one overlayfs tree.

    ``state_dir`` holds the private mount directory when there is no upper dir (with an
    upper dir it is created beside it, as overlayfs wants its workdir on the upper's
    filesystem). Private directories are named ``.ovl-*`` and flocked while in use, so a
    reaper can tell abandoned ones (see ``LayerDirs.reap``).
    """

    def __init__(self, state_dir: Path | None = None) -> None:
        self.state_dir = state_dir

    @contextlib.contextmanager
    def mount(self, lowers: Sequence[Path], upper: Path | None) -> Iterator[Path]:
        """Mount ``lowers`` (bottom -> top) with ``upper``; yields the merged directory.

        Read-only without ``upper``. No lowers means an empty tree. Always unmounts (lazily if
        the tree is still busy) and removes its private directory.
        """
        base = upper.parent if upper is not None else self.state_dir
        if base is not None:
            base.mkdir(parents=True, exist_ok=True)
        private, lock_fd = locked_dir(base or Path(tempfile.gettempdir()), PRIVATE_PREFIX)
        merged = private / "m"
        mounted = False
        try:
            merged.mkdir()
            merged.chmod(0o755)
            with phase("overlay mount"):
                self._mount(private, merged, lowers, upper, volatile=True)
            mounted = True
            yield merged
        finally:
            try:
                if mounted:
                    with phase("overlay unmount"):
                        unmount(str(merged))
            finally:
                try:
                    remove_tree(private)
                finally:
                    os.close(lock_fd)

    def _mount(
        self,
        private: Path,
        merged: Path,
        lowers: Sequence[Path],
        upper: Path | None,
        *,
        volatile: bool = False,
    ) -> None:
        """``volatile`` (a mount that lives for one step): overlayfs's ``volatile`` option, so
        the unmount does not sync the whole upper filesystem (measured: 5-140 ms per RUN step
        while other writers were busy). Nothing relies on that sync: a step's upper dir is
        thrown away or becomes a layer directory, which is either synced by ``LayerDirs``
        itself (``durable``) or trusted only in the boot that wrote it."""
        layers = list(reversed(lowers))  # overlayfs lists the top layer first
        # an upper needs one lower, a read-only overlay two: pad with distinct empty dirs
        while len(layers) < (1 if upper is not None else 2):
            empty = private / f"e{len(layers)}"
            empty.mkdir()
            layers.append(empty)
        fds: list[int] = []
        try:
            for layer in layers:
                try:
                    fds.append(os.open(layer, PATH_FLAGS | os.O_DIRECTORY))
                except OSError as exc:
                    raise ExecutionError(
                        f"overlay lower {layer}: {exc.strerror} (not a directory?)"
                    ) from None
            options = ["lowerdir=" + ":".join(f"/proc/self/fd/{fd}" for fd in fds)]
            flags = 0
            if upper is None:
                flags |= MS_RDONLY
            else:
                work = private / "w"
                work.mkdir()
                for d in (upper, work):
                    fds.append(os.open(d, PATH_FLAGS | os.O_DIRECTORY))
                options.append(f"upperdir=/proc/self/fd/{fds[-2]}")
                options.append(f"workdir=/proc/self/fd/{fds[-1]}")
                options.extend(overlay_extra_options())
            volatile = volatile and upper is not None and _VOLATILE[0]
            if volatile:
                options.append("volatile")
            data = ",".join(options)
            if len(data.encode()) > MOUNT_DATA_LIMIT:
                raise ExecutionError(
                    f"too many layers to mount ({len(lowers)}): the overlay mount options"
                    f" exceed one page ({len(data)} > {MOUNT_DATA_LIMIT} bytes)"
                )
            try:
                sys_mount("overlay", str(merged), "overlay", flags, data)
            except OSError as exc:
                if not volatile or exc.errno != errno.EINVAL:
                    raise _mount_error("overlay", str(merged), exc) from None
                _VOLATILE[0] = False  # a kernel before 5.10: mount as before
                try:
                    sys_mount("overlay", str(merged), "overlay", flags, ",".join(options[:-1]))
                except OSError as again:
                    raise _mount_error("overlay", str(merged), again) from None
        finally:
            for fd in fds:
                os.close(fd)


def mount_persistent(
    lowers: Sequence[Path], upper: Path, *, work_parent: Path, merged: Path
) -> None:
    """Mount ``lowers`` + ``upper`` at ``merged`` and leave it mounted: a container's root
    outlives the process that starts it. ``work_parent`` (empty) gets overlayfs's work dir."""
    Overlay()._mount(work_parent, merged, lowers, upper)


@contextlib.contextmanager
def bind_mount(source: Path, target: Path, *, readonly: bool) -> Iterator[Path]:
    """Bind ``source`` (a directory or file) at ``target`` (which must exist); always unmounts."""
    try:
        sys_mount(str(source), str(target), None, MS_BIND | MS_REC, None)
    except OSError as exc:
        raise _mount_error(f"bind of {source}", str(target), exc) from None
    try:
        if readonly:
            try:
                sys_mount(
                    "none", str(target), None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_REC, None
                )
            except OSError as exc:
                raise _mount_error("read-only remount", str(target), exc) from None
        yield target
    finally:
        unmount(str(target))


# --------------------------------------------------------------------------- mount stubs


@dataclass(frozen=True, slots=True, kw_only=True)
class StubParent:
    """A directory that existed before the stubs were made; it may have been copied up."""

    path: tuple[str, ...]
    mode: int
    uid: int
    gid: int


@dataclass(frozen=True, slots=True, kw_only=True)
class MountStubs:
    """What ``prepare_mountpoints`` created (parents before children) and the pre-existing
    directories they were created in (each may have been copied up into the upper dir)."""

    created: tuple[tuple[str, ...], ...] = ()
    parents: tuple[StubParent, ...] = ()

    def merge(self, other: MountStubs) -> MountStubs:
        seen = {p.path for p in self.parents}
        return MountStubs(
            created=self.created + tuple(c for c in other.created if c not in self.created),
            parents=self.parents + tuple(p for p in other.parents if p.path not in seen),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class MountTarget:
    """A mount destination inside the container and whether it is a directory."""

    destination: str
    directory: bool = True


def mkdir_in_root(rootfs: Path, path: str, *, uid: int = 0, gid: int = 0) -> str:
    """``mkdir -p`` of ``path`` inside ``rootfs`` (symlinks resolved in-root); directories it
    creates get mode 0755 and owner ``uid:gid`` (BuildKit's working-directory creation).
    Returns the canonical in-root path."""
    dest = paths.clean_abs(path)
    try:
        with Root(rootfs) as root:
            made = root.mkdir_all(dest, owner=(uid, gid))
    except OSError as exc:
        raise ExecutionError(f"cannot create directory {dest}: {exc.strerror}") from None
    made.close()
    return "/" + "/".join(made.comps)


def prepare_mountpoints(
    rootfs: Path, targets: Sequence[MountTarget]
) -> tuple[tuple[str, ...], MountStubs]:
    """Create each missing destination in ``rootfs`` (in-root, symlinks resolved inside it).

    Returns the canonical destinations (absolute, no symlinks, same order) and the stubs made.
    A destination whose path crosses a non-directory raises ``ExecutionError``.
    """
    created: list[tuple[str, ...]] = []
    parents: dict[tuple[str, ...], StubParent] = {}
    out: list[str] = []
    with Root(rootfs) as root:
        for target in targets:
            out.append(_ensure_target(root, target, created, parents))
    return tuple(out), MountStubs(created=tuple(created), parents=tuple(parents.values()))


def _ensure_target(
    root: Root,
    target: MountTarget,
    created: list[tuple[str, ...]],
    parents: dict[tuple[str, ...], StubParent],
) -> str:
    dest = paths.clean_abs(target.destination)
    if dest == "/":
        raise ExecutionError(f"cannot mount on {dest!r}: the root directory is not a mount target")
    try:
        entry = root.resolve(dest)
        if entry.st is not None:
            if target.directory and not entry.is_dir:
                raise ExecutionError(
                    f"cannot mount on {dest}: {entry.comps[-1]!r} is not a directory"
                )
            if not target.directory and entry.is_dir:
                raise ExecutionError(f"cannot mount a file on {dest}: it is a directory")
            return entry.path
        _note_parents(root, entry, created, parents)
        made = root.mkdir_all(entry.comps if target.directory else entry.comps[:-1])
        try:
            if not target.directory:
                os.close(os.open(entry.comps[-1], CREATE_FLAGS, 0o644, dir_fd=made.fd))
        finally:
            made.close()
        created.extend(made.created)
        if not target.directory:
            created.append(entry.comps)
        return entry.path
    except OSError as exc:
        raise ExecutionError(f"cannot mount on {dest}: {exc.strerror}") from None


def _note_parents(
    root: Root,
    entry: Entry,
    created: list[tuple[str, ...]],
    parents: dict[tuple[str, ...], StubParent],
) -> None:
    """Record every pre-existing directory above what is about to be created (creating below
    it copies it up)."""
    made = set(created)
    for depth in range(1, entry.found + 1):
        key = entry.comps[:depth]
        if key in made or key in parents:
            continue
        st = root.lstat(key)
        if st is not None:
            parents[key] = StubParent(path=key, mode=st.st_mode, uid=st.st_uid, gid=st.st_gid)


def _open_dir_nofollow(root: Root, parts: tuple[str, ...]) -> int | None:
    """Open ``parts`` below the root refusing every symlink; None if absent or not a dir."""
    try:
        return root.open_dir(parts)
    except OSError:
        return None


def _is_opaque(fd: int) -> bool:
    for name in _OPAQUE_XATTRS:
        try:
            if os.getxattr(fd, name) == b"y":
                return True
        except OSError:
            continue
    return False


def _remove_if_stub(parent_fd: int, name: str, parent: StubParent | None) -> None:
    try:
        st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
        try:
            if os.listdir(fd) or _is_opaque(fd):
                return
        finally:
            os.close(fd)
        if parent is not None and (
            stat.S_IMODE(st.st_mode) != stat.S_IMODE(parent.mode)
            or (st.st_uid, st.st_gid) != (parent.uid, parent.gid)
        ):
            return  # the step changed the directory itself: a real change
        remover = os.rmdir
    elif stat.S_ISREG(st.st_mode) and st.st_size == 0 and parent is None:
        remover = os.unlink
    else:
        return  # replaced by the step with something else: keep it
    times = os.fstat(parent_fd)
    remover(name, dir_fd=parent_fd)
    os.utime(parent_fd, ns=(times.st_atime_ns, times.st_mtime_ns))


def clean_upper(upper: Path, stubs: MountStubs) -> None:
    """Remove the mount stubs (and stub-only copy-ups) from an unmounted upper dir.

    A stub is removed only if it is still an empty directory or empty file; a pre-existing
    directory only if its upper copy is empty, not opaque, and has its original mode and owner.
    Paths are walked with ``O_NOFOLLOW`` on every component: if the step replaced a parent with
    a symlink, nothing outside the upper dir can be touched. Parent mtimes are restored.
    """
    with Root(upper) as root:
        for path in reversed(stubs.created):
            pfd = _open_dir_nofollow(root, path[:-1])
            if pfd is None:
                continue
            try:
                _remove_if_stub(pfd, path[-1], None)
            finally:
                os.close(pfd)
        for parent in sorted(stubs.parents, key=lambda p: len(p.path), reverse=True):
            pfd = _open_dir_nofollow(root, parent.path[:-1])
            if pfd is None:
                continue
            try:
                _remove_if_stub(pfd, parent.path[-1], parent)
            finally:
                os.close(pfd)
