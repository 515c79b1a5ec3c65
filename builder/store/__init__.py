"""The local image store (OCI layout + private state) and its maintenance.

Entry point: ``Store.open(root)``; see ``builder.store.layout`` for the on-disk layout.

The names below load with their modules on first use, so that ``builder.store.paths`` (what
the no-op rebuild check needs) can be imported without the rest of the store.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Final

from builder.store.paths import CONTAINERD_NAME, REF_NAME, default_store_root

if TYPE_CHECKING:
    from builder.store.cache import CacheIndex, CacheRecord
    from builder.store.fsck import FsckProblem, FsckReport
    from builder.store.gc import PruneReport
    from builder.store.layout import ImageRecord, IndexEntry, Store, StoreLayer

_LAZY: Final = (
    ("CacheIndex", "cache"),
    ("CacheRecord", "cache"),
    ("FsckProblem", "fsck"),
    ("FsckReport", "fsck"),
    ("PruneReport", "gc"),
    ("ImageRecord", "layout"),
    ("IndexEntry", "layout"),
    ("Store", "layout"),
    ("StoreLayer", "layout"),
)


def __getattr__(name: str) -> object:
    module = next((m for n, m in _LAZY if n == name), None)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"builder.store.{module}"), name)


__all__ = [
    "CONTAINERD_NAME",
    "REF_NAME",
    "CacheIndex",
    "CacheRecord",
    "FsckProblem",
    "FsckReport",
    "ImageRecord",
    "IndexEntry",
    "PruneReport",
    "Store",
    "StoreLayer",
    "default_store_root",
]
