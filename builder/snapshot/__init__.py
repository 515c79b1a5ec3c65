"""Layer directories in overlayfs form, overlay mounts, and mount-stub cleanup (root only)."""

from __future__ import annotations

from builder.snapshot.layerdirs import LayerBlob, LayerDirs
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
    "Overlay",
    "clean_upper",
    "mounts_under",
    "prepare_mountpoints",
]
