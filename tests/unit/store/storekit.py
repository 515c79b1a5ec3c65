"""Helpers for store tests: small random images built with the real layer writer."""

from __future__ import annotations

import io

from builder.oci import mutate
from builder.oci.image import EMPTY, BytesLayer, ImageValue
from builder.oci.layer import LayerEntry, write_layer
from builder.oci.types import ContainerConfig, History


def layer(files: dict[str, bytes]) -> BytesLayer:
    out = io.BytesIO()
    result = write_layer(
        [LayerEntry(path=p, data=d) for p, d in sorted(files.items())], out, source_date_epoch=0
    )
    return BytesLayer(data=out.getvalue(), diff_id=result.diff_id)


def image(*layers: dict[str, bytes], cmd: tuple[str, ...] = ("sh",)) -> ImageValue:
    img = EMPTY
    for i, files in enumerate(layers):
        img = mutate.append_layer(img, layer(files), history=History(created_by=f"step {i}"))
    return mutate.with_config(img, ContainerConfig(cmd=cmd))
