"""The store's cache of extracted layer directories (overlayfs lower form), keyed by chain ID.

::

    <store>/snapshots/<chain-id hex>/   one layer's content alone, whiteouts as 0/0 char devices,
                                        opaque dirs marked trusted.overlay.opaque=y
    <store>/snapshots/.extract-*        a layer being extracted (renamed into place when done)
    <store>/snapshots/.scratch-*        fresh dirs for RUN uppers and COPY staging
    <store>/snapshots/.ovl-*            private dirs of live overlay mounts (merged + work)
    <store>/snapshots/<hex>.unsynced    the directory was renamed into place without a sync...
    <store>/snapshots/<hex>.boot-<id>   ...during the boot with this /proc boot_id
    <store>/locks/snapshot-<hex>.lock   flock held while a chain's directory is created

A directory under its final name is complete: it is extracted (or built) elsewhere, then
renamed (atomic within the filesystem). With ``durable=True`` it is ``syncfs``-ed before the
rename. With ``durable=False`` it is not; instead two empty marker files are created before
the rename, and the directory is trusted only during the boot that wrote it: after a machine
crash (the only way to lose page-cache data) the boot ID differs, so ``ensure`` throws the
directory away and extracts the layer again from its blob (blobs are fsynced by the store).
Marker names carry the information, not their content, and they are created before the rename
in the same directory, so the journal cannot keep the rename and lose them. A directory with
no ``.unsynced`` marker was synced. Temporary directories are flocked by their owner for their
whole life, so ``reap()`` removes only abandoned ones (their owner died).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Collection, Iterator, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Final

from builder.digest import Digest
from builder.errors import StoreError
from builder.fs.root import DIR_FLAGS
from builder.oci.layer_apply import apply_layer
from builder.oci.tarformat import TarLimits, unpack_limit
from builder.snapshot.base import LayerBlob
from builder.snapshot.overlay import (
    PRIVATE_PREFIX,
    Overlay,
    mounts_under,
    remove_tree,
    unmount,
)
from builder.store import paths
from builder.store.layout import Store
from builder.store.locks import NEW_PREFIX, abandoned, flocked, locked_dir
from builder.timings import phase

EXTRACT_PREFIX: Final = ".extract-"
SCRATCH_PREFIX: Final = ".scratch-"
UNSYNCED_SUFFIX: Final = ".unsynced"
BOOT_SUFFIX: Final = ".boot-"
BOOT_ID_FILE: Final = "/proc/sys/kernel/random/boot_id"
DEFAULT_EXTRACT_TIMEOUT: Final = 1800.0


def syncfs(fd: int) -> None:
    """``syncfs(2)``: flush the filesystem holding ``fd`` (one call instead of a fsync per file)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syncfs.argtypes = [ctypes.c_int]
    if libc.syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def boot_id() -> str | None:
    """This boot's ID (changes at every boot), or None when the kernel does not tell."""
    try:
        with open(BOOT_ID_FILE, encoding="ascii") as fh:
            value = fh.read().strip()
    except (OSError, UnicodeDecodeError):
        return None
    return value if value and all(c.isalnum() or c == "-" for c in value) else None


def _sync_dir(path: Path) -> None:
    fd = os.open(path, DIR_FLAGS)
    try:
        syncfs(fd)
    finally:
        os.close(fd)


class LayerDirs:
    """Extracted layer directories shared by every build using ``store``, and overlay mounts
    of them: the overlayfs :class:`~builder.snapshot.base.Snapshotter`."""

    def __init__(
        self,
        store: Store,
        *,
        durable: bool = True,
        lock_timeout: float = DEFAULT_EXTRACT_TIMEOUT,
    ) -> None:
        self.store = store
        self.root = store.root / paths.SNAPSHOTS
        self.lock_timeout = lock_timeout
        self.root.mkdir(parents=True, exist_ok=True)
        self.boot = boot_id()
        self.durable = durable or self.boot is None  # no boot ID: sync, as there is no marker

    # -- paths and locks -------------------------------------------------------------------

    def path(self, chain: tuple[Digest, ...]) -> Path:
        return self.store.snapshot_dir(chain)

    def has(self, chain: tuple[Digest, ...]) -> bool:
        return self.path(chain).is_dir()

    def trusted_path(self, chain: tuple[Digest, ...]) -> Path | None:
        """The directory of ``chain`` if it exists and can be trusted (see the module doc)."""
        target = self.path(chain)
        return target if target.is_dir() and self._trusted(target) else None

    def marker_path(self, target: Path, suffix: str) -> Path:
        return target.with_name(target.name + suffix)

    def _trusted(self, target: Path) -> bool:
        """An existing directory is trusted unless it was not synced and this is another boot."""
        if self.boot is not None and self.marker_path(target, BOOT_SUFFIX + self.boot).exists():
            return True
        return not self.marker_path(target, UNSYNCED_SUFFIX).exists()

    def _drop(self, target: Path) -> None:
        """Remove a directory and its markers, if any (chain lock held)."""
        markers = [self.marker_path(target, UNSYNCED_SUFFIX)]
        if self.boot is not None:
            markers.append(self.marker_path(target, BOOT_SUFFIX + self.boot))
        if target.is_dir():
            remove_tree(target)
            prefix = target.name + BOOT_SUFFIX  # markers of other boots, rarely any
            with os.scandir(self.root) as it:
                markers += [Path(e.path) for e in it if e.name.startswith(prefix)]
        for marker in markers:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(marker)

    def _publish(self, directory: Path, target: Path) -> None:
        """Rename a finished directory into place: synced, or marked with this boot."""
        if self.durable:
            _sync_dir(directory)
        else:
            assert self.boot is not None
            for suffix in (UNSYNCED_SUFFIX, BOOT_SUFFIX + self.boot):
                # not a walk: a marker next to the cache directory, created or kept as is
                fd = os.open(
                    self.marker_path(target, suffix),
                    os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
                    0o644,
                )
                os.close(fd)
        os.rename(directory, target)

    @contextlib.contextmanager
    def _chain_lock(self, chain: tuple[Digest, ...]) -> Iterator[None]:
        with self._dir_lock(self.path(chain).name):
            yield

    @contextlib.contextmanager
    def _dir_lock(self, chain_hex: str) -> Iterator[None]:
        name = f"snapshot-{chain_hex}.lock"
        with flocked(
            paths.lock_path(self.store.root, name), exclusive=True, timeout=self.lock_timeout
        ):
            yield

    @contextlib.contextmanager
    def _temp_dir(self, prefix: str) -> Iterator[Path]:
        """A flocked, 0755 empty directory in the snapshots dir; removed on exit if still there."""
        path, fd = locked_dir(self.root, prefix)
        try:
            os.chmod(fd, 0o755)
            yield path
        finally:
            try:
                if os.path.lexists(path) and os.path.samestat(os.fstat(fd), os.lstat(path)):
                    remove_tree(path)
            finally:
                os.close(fd)

    # -- API -------------------------------------------------------------------------------

    def ensure(self, layers: Sequence[LayerBlob]) -> tuple[Path, ...]:
        """Layer directories for ``layers`` (bottom -> top), extracting missing ones once.

        Extraction verifies each layer's diff_id; concurrent callers wait on a per-chain flock
        and the loser finds the directory ready.
        """
        diff_ids = tuple(layer.diff_id for layer in layers)
        out: list[Path] = []
        for i, layer in enumerate(layers):
            chain = diff_ids[: i + 1]
            target = self.path(chain)
            if not (target.is_dir() and self._trusted(target)):
                with self._chain_lock(chain):
                    if not (target.is_dir() and self._trusted(target)):
                        self._drop(target)
                        self._extract(layer, target)
            out.append(target)
        return tuple(out)

    def _extract(self, layer: LayerBlob, target: Path) -> None:
        with self._temp_dir(EXTRACT_PREFIX) as tmp, phase("layer extract"):
            with layer.open_compressed() as stream:
                apply_layer(
                    stream,
                    tmp,
                    expected_diff_id=layer.diff_id,
                    same_owner=True,
                    name=f"layer {layer.diff_id}",
                    overlay_lower=True,
                    limits=TarLimits(max_bytes=unpack_limit(layer.descriptor.size)),
                )
            self._publish(tmp, target)

    def adopt(self, chain: tuple[Digest, ...], directory: Path) -> Path:
        """Move ``directory`` (a finished upper or COPY dir from ``scratch_dir``) into the cache
        as the directory of ``chain``. If another build got there first, ``directory`` is
        discarded and the existing one is returned."""
        target = self.path(chain)
        st = directory.lstat()
        if st.st_dev != self.root.stat().st_dev:
            raise StoreError(f"cannot adopt {directory}: not on the store's filesystem")
        with self._chain_lock(chain), phase("layer dir adopt"):
            if target.is_dir() and self._trusted(target):
                remove_tree(directory)
                return target
            self._drop(target)
            os.chmod(directory, 0o755)
            self._publish(directory, target)
        return target

    @contextlib.contextmanager
    def scratch_dir(self) -> Iterator[Path]:
        """A fresh empty directory (mode 0755) on the store's filesystem, removed on exit unless
        it was adopted."""
        with self._temp_dir(SCRATCH_PREFIX) as path:
            yield path

    def mount(self, lowers: Sequence[Path], upper: Path | None) -> AbstractContextManager[Path]:
        """An overlay of ``lowers`` with ``upper`` (see ``Overlay.mount``); its private
        directory is in the snapshots dir when there is no upper, so ``reap`` finds it."""
        return Overlay(self.root).mount(lowers, upper)

    def remove(self, chain: tuple[Digest, ...]) -> bool:
        """Delete the directory of ``chain`` (GC); False if there was none."""
        target = self.path(chain)
        with self._chain_lock(chain):
            found = target.is_dir()
            self._drop(target)
        return found

    def prune(self, keep: Collection[str]) -> int:
        """Remove every layer directory whose chain ID (hex) is not in ``keep``, stray markers,
        and abandoned temporary directories (``reap``): ``pybuild prune``, under the store's
        exclusive lock. A build extracts a removed directory again from its blob. Returns how
        many layer directories were removed."""
        self.reap()
        removed = 0
        for entry in sorted(self.root.iterdir()):
            name = entry.name
            chain_hex = name.split(".", 1)[0]
            if name.startswith(".") or chain_hex in keep:
                continue  # temporary directories are reap's
            if name != chain_hex:  # a marker: kept while its directory is
                if not (self.root / chain_hex).is_dir():
                    entry.unlink(missing_ok=True)
                continue
            with self._dir_lock(chain_hex):
                removed += entry.is_dir()
                self._drop(entry)
        return removed

    def reap(self) -> tuple[Path, ...]:
        """Remove temporary directories whose owner is gone (their flock is free), unmounting
        anything left mounted below them first. Returns what was removed."""
        return reap_locked_dirs(self.root, (EXTRACT_PREFIX, SCRATCH_PREFIX, PRIVATE_PREFIX))


def reap_locked_dirs(parent: Path, prefixes: tuple[str, ...]) -> tuple[Path, ...]:
    """Remove the directories of ``parent`` named with ``prefixes`` (or ``.new-``) made by
    ``locked_dir`` whose owner is gone, unmounting what is still mounted below them first.
    Returns what was removed; one ``scandir`` when there is nothing to do."""
    removed: list[Path] = []
    try:
        with os.scandir(parent) as it:
            names = sorted(e.name for e in it if e.name.startswith((*prefixes, NEW_PREFIX)))
    except FileNotFoundError:
        return ()
    for name in names:
        entry = parent / name
        fd = abandoned(entry)
        if fd is None:
            continue  # alive (or too young to tell)
        try:
            for mountpoint in reversed(mounts_under(entry)):
                unmount(mountpoint)
            remove_tree(entry)
            removed.append(entry)
        finally:
            os.close(fd)
    return tuple(removed)
