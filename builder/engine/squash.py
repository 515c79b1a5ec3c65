"""``--squash``: fold the target stage's layers above its base into one layer.

Docker's (experimental) ``--squash`` semantics: the base's layers and history stay; every
history entry the Dockerfile added is kept but marked ``empty_layer``, and one more entry, dated
like the newest of them, with the comment ``merge <unsquashed image ID> to <base>``, describes
the squashed layer. The layer is made the way a RUN step's layer is: the new layers are applied,
in order, onto an overlay mount of the base's layer directories, so that overlayfs records in the
upper directory exactly the difference (whiteouts included) between the base and the final
filesystem; that upper directory is written as the layer.
"""

from __future__ import annotations

from dataclasses import replace

from builder.digest import Digest
from builder.engine.scheduler import StageResult, history_diff_ids
from builder.oci.layer_apply import apply_layer
from builder.oci.types import History
from builder.snapshot.base import Snapshotter
from builder.store import Store


def squash(
    store: Store,
    snapshotter: Snapshotter,
    result: StageResult,
    *,
    unsquashed_id: Digest,
    base: str,
    source_date_epoch: int | None,
) -> StageResult:
    """``result`` with its layers above ``result.base_layers`` folded into one; unchanged when
    the stage added no layer. ``base`` names the base in the history comment ("" for none)."""
    below, above = result.layers[: result.base_layers], result.layers[result.base_layers :]
    if not above:
        return result
    with snapshotter.scratch_dir() as upper:
        with snapshotter.mount(snapshotter.ensure(below), upper) as merged:
            for i, layer in enumerate(above):
                with layer.open_compressed() as stream:
                    apply_layer(
                        stream,
                        merged,
                        expected_diff_id=layer.diff_id,
                        name=f"layer {result.base_layers + i}",
                    )
        layer = store.write_layer(upper, overlay=True, source_date_epoch=source_date_epoch)
        snapshotter.adopt((*history_diff_ids(below), layer.diff_id), upper)
    history = result.config.history
    kept, added = history[: result.base_history], history[result.base_history :]
    times = [h.created for h in added if h.created]
    comment = f"merge {unsquashed_id} to {base}" if base else f"merge {unsquashed_id}"
    entries = (
        *kept,
        *(replace(h, empty_layer=True) for h in added),
        History(created=max(times) if times else None, comment=comment),
    )
    config = replace(
        result.config,
        diff_ids=(*history_diff_ids(below), layer.diff_id),
        history=entries,
    )
    return replace(result, layers=(*below, layer), config=config)
