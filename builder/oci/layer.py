"""Layers: deterministic writer, in-root applier, entry listing (public entry points).

``write_layer(source_dir or entries, out) -> LayerResult`` and
``apply_layer(blob_stream, rootfs) -> ApplyResult`` are the two halves; ``list_entries``
reads a layer's headers for tests and ``inspect``-style commands.
"""

from __future__ import annotations

from builder.oci.layer_apply import (
    OPAQUE_MARKER,
    WHITEOUT_PREFIX,
    ApplyResult,
    apply_layer,
    list_entries,
)
from builder.oci.layer_write import LayerEntry, LayerResult, scan_dir, write_layer
from builder.oci.tarformat import EntryType, TarHeader, TarLimits

__all__ = [
    "OPAQUE_MARKER",
    "WHITEOUT_PREFIX",
    "ApplyResult",
    "EntryType",
    "LayerEntry",
    "LayerResult",
    "TarHeader",
    "TarLimits",
    "apply_layer",
    "list_entries",
    "scan_dir",
    "write_layer",
]
