"""``build --metadata-file FILE``: the result as buildx writes it.

Keys (buildx's): ``containerimage.digest`` (the manifest), ``containerimage.config.digest`` (the
image ID), ``containerimage.descriptor`` (media type, digest, size and BuildKit's
``config.digest`` annotation) and, when the image has names, ``image.name`` (the full names,
comma-separated). pybuild always stores the image, so these keys are there for every output.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from builder.api import BuildResult
from builder.errors import BuildError
from builder.reference import parse
from builder.store import Store, default_store_root


def metadata(result: BuildResult, *, root: str | None) -> dict[str, object]:
    desc = result.descriptor
    if desc is None:
        store = Store.open(Path(root) if root else default_store_root())
        desc = store.resolve(str(result.digest)).descriptor
    out: dict[str, object] = {
        "containerimage.config.digest": str(result.image_id),
        "containerimage.descriptor": {
            "mediaType": desc.media_type,
            "digest": str(desc.digest),
            "size": desc.size,
            "annotations": {"config.digest": str(result.image_id)},
        },
        "containerimage.digest": str(desc.digest),
    }
    if result.tags:
        out["image.name"] = ",".join(str(parse(name)) for name in result.tags)
    return out


def write_metadata(path: Path, result: BuildResult, *, root: str | None) -> None:
    data = json.dumps(metadata(result, root=root), indent=2, sort_keys=True) + "\n"
    try:
        fd, tmp = tempfile.mkstemp(prefix=".pybuild_metadata_", dir=path.parent)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        raise BuildError(f"failed to write metadata file {path}: {exc.strerror}") from None
