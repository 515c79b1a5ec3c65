"""Where things are in a store, for code that must not load the whole store package.

The no-op rebuild check (:mod:`builder.engine.noop`) reads ``index.json`` and stats blobs and
cache records through these names before anything else of the engine is imported.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

REF_NAME: Final = "org.opencontainers.image.ref.name"
CONTAINERD_NAME: Final = "io.containerd.image.name"


def default_store_root(env: dict[str, str] | None = None, *, euid: int | None = None) -> Path:
    """``$PYBUILD_ROOT``; else ``/var/lib/pybuild`` for root; else ``$XDG_DATA_HOME/pybuild``."""
    environ = dict(os.environ) if env is None else env
    if environ.get("PYBUILD_ROOT"):
        return Path(environ["PYBUILD_ROOT"])
    if (os.geteuid() if euid is None else euid) == 0:
        return Path("/var/lib/pybuild")
    data_home = environ.get("XDG_DATA_HOME") or os.path.join(
        environ.get("HOME") or os.path.expanduser("~"), ".local", "share"
    )
    return Path(data_home) / "pybuild"


def index_path(root: Path) -> Path:
    return root / "index.json"


def blob_path(root: Path, hex_digest: str) -> Path:
    """``blobs/sha256/<hex>``; ``hex_digest`` must already be a validated sha256 hex."""
    return root / "blobs" / "sha256" / hex_digest


def cache_record_path(root: Path, hex_key: str) -> Path:
    return root / "cache" / f"{hex_key}.json"


def store_lock_path(root: Path) -> Path:
    return root / "locks" / "store.lock"


CONTAINER_IMAGE: Final = "image.json"  # in a container's directory: its image's descriptor


def containers_dir(root: Path) -> Path:
    """``containers/<id>/``: each container's record, writable layer, bundle and logs."""
    return root / "containers"
