"""The Snapshotter protocol: layer directories and the mounts the engine runs steps on.

A *layer directory* holds one layer's content in overlayfs lower form; a stack of them,
bottom to top, is a rootfs. The engine asks the snapshotter for the directories of a layer
stack (``ensure``), mounts them (``mount``), writes a step's changes into a fresh directory
(``scratch_dir``) and hands that directory back as the layer directory of the new stack
(``adopt``). ``LayerDirs`` (overlayfs, root only) is the real one; the scheduler's unit tests
use a fake.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import BinaryIO, Protocol

from builder.digest import Digest
from builder.oci.descriptor import Descriptor


class LayerBlob(Protocol):
    """What a snapshotter needs of a layer: ``StoreLayer`` and ``builder.oci.image.Layer`` fit."""

    @property
    def descriptor(self) -> Descriptor: ...

    @property
    def diff_id(self) -> Digest: ...

    def open_compressed(self) -> BinaryIO: ...


class Mounter(Protocol):
    def mount(self, lowers: Sequence[Path], upper: Path | None) -> AbstractContextManager[Path]:
        """Mount ``lowers`` (bottom -> top) with ``upper`` and yield the merged tree; writes go
        to ``upper``; read-only without one. Unmounted when the block ends."""
        ...


class Snapshotter(Mounter, Protocol):
    def ensure(self, layers: Sequence[LayerBlob]) -> tuple[Path, ...]:
        """The layer directories of ``layers`` (bottom -> top), extracting missing ones."""
        ...

    def trusted_path(self, chain: tuple[Digest, ...]) -> Path | None:
        """The directory of the layer stack ``chain`` (diff IDs) if it is ready, else None."""
        ...

    def scratch_dir(self) -> AbstractContextManager[Path]:
        """A fresh empty directory for a step's changes, removed at exit unless adopted."""
        ...

    def adopt(self, chain: tuple[Digest, ...], directory: Path) -> Path:
        """Make ``directory`` (from ``scratch_dir``) the directory of ``chain``."""
        ...
