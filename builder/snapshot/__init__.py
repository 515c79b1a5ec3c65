"""Layer directories in overlayfs form, overlay mounts, and mount-stub cleanup (root only).

``Snapshotter`` (``builder.snapshot.base``) is what the engine needs of them; ``LayerDirs`` is
the overlayfs implementation, built by the composition root (``builder.api``).
"""

from __future__ import annotations

from builder.snapshot.base import LayerBlob, Mounter, Snapshotter
from builder.snapshot.layerdirs import LayerDirs
from builder.snapshot.overlay import (
    MountStubs,
    MountTarget,
    Overlay,
    clean_upper,
    mounts_under,
    prepare_mountpoints,
)

__all__ = [
    "LayerBlob",
    "LayerDirs",
    "MountStubs",
    "MountTarget",
    "Mounter",
    "Overlay",
    "Snapshotter",
    "clean_upper",
    "mounts_under",
    "prepare_mountpoints",
]
