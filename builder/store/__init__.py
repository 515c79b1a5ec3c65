"""The local image store (OCI layout + private state) and its maintenance.

Entry point: ``Store.open(root)``; see ``builder.store.layout`` for the on-disk layout.
"""

from __future__ import annotations

from builder.store.cache import CacheIndex, CacheRecord
from builder.store.fsck import FsckProblem, FsckReport
from builder.store.gc import PruneReport
from builder.store.layout import (
    CONTAINERD_NAME,
    REF_NAME,
    ImageRecord,
    Store,
    StoreLayer,
    default_store_root,
)

__all__ = [
    "CONTAINERD_NAME",
    "REF_NAME",
    "CacheIndex",
    "CacheRecord",
    "FsckProblem",
    "FsckReport",
    "ImageRecord",
    "PruneReport",
    "Store",
    "StoreLayer",
    "default_store_root",
]
