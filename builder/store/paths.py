"""The store's on-disk layout, named in this one place (every file and directory under the
store root), and where things are for code that must not load the whole store package.

``Store.open`` creates the directories marked ``at_open``; ``pybuild fsck`` reports any other
entry of the store root as stray; ``pybuild prune`` empties the ``temporary`` ones. The no-op
rebuild check (:mod:`builder.engine.noop`) reads ``index.json`` and stats blobs and cache
records through these names before anything else of the engine is imported.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Final

REF_NAME: Final = "org.opencontainers.image.ref.name"
CONTAINERD_NAME: Final = "io.containerd.image.name"

OCI_LAYOUT: Final = "oci-layout"
INDEX: Final = "index.json"
BLOBS: Final = "blobs"
INGEST: Final = "ingest"
LOCKS: Final = "locks"
CACHE: Final = "cache"
SNAPSHOTS: Final = "snapshots"
TMP: Final = "tmp"
CORRUPT: Final = "corrupt"
BUILDINFO: Final = "buildinfo"
CACHEMOUNTS: Final = "cachemounts"
CONTEXTS: Final = "contexts"
SIZES: Final = "sizes"
GIT: Final = "git"
CONTAINERS: Final = "containers"
CONTAINER_RUNTIME: Final = "runc-containers"
RUNTIMES: Final = ("runc", "crun")


@dataclass(frozen=True, slots=True, kw_only=True)
class StateDir:
    """A directory directly under the store root."""

    name: str
    purpose: str
    at_open: bool = False  # created by ``Store.open``; the others by their first user
    temporary: bool = False  # nothing in it outlives its writer: ``prune`` empties it
    spread: bool = False  # big trees are made and deleted in it (fsutil.spread_new_directories)


STATE_DIRS: Final = (
    StateDir(name=BLOBS, purpose="content, named by its sha256", at_open=True),
    StateDir(name=INGEST, purpose="blobs being written (flocked)", at_open=True),
    StateDir(name=LOCKS, purpose="store, index, blob, step and snapshot locks", at_open=True),
    StateDir(name=CACHE, purpose="build cache records (GC roots)", at_open=True),
    StateDir(name=SNAPSHOTS, purpose="layer directories by chain ID", at_open=True, spread=True),
    StateDir(name=TMP, purpose="run bundles, staging", at_open=True, temporary=True, spread=True),
    StateDir(name=CORRUPT, purpose="quarantined blobs", at_open=True, temporary=True),
    StateDir(
        name=GIT, purpose="git contexts by commit (fetched again)", at_open=True, temporary=True
    ),
    StateDir(name=BUILDINFO, purpose="per-step records (miss reasons), no-op records"),
    StateDir(name=CACHEMOUNTS, purpose="RUN --mount=type=cache directories"),
    StateDir(name=CONTEXTS, purpose="build-context checksum caches"),
    StateDir(name=SIZES, purpose="file-content sizes of layers (pybuild images)"),
    StateDir(name=CONTAINERS, purpose="containers: record, writable layer, bundle, logs"),
    StateDir(name=CONTAINER_RUNTIME, purpose="runtime state (--root) of detached containers"),
    *(StateDir(name=r, purpose=f"{r} state (--root of the runtime)") for r in RUNTIMES),
)
STORE_FILES: Final = (OCI_LAYOUT, INDEX)

# The store root and every state directory are private to their owner (root), as S11 of
# SECURITY.md requires: snapshots hold images' setuid binaries and device nodes, cache mounts
# and contexts hold build inputs (CVE-2021-41091: docker's world-traversable data dir let host
# users run setuid files from containers' layers). 0711 is not needed anywhere: runc, crun and
# overlayfs run as real root and resolve every rootfs, bundle and mount source with root's
# credentials before the container's process starts (pivot_root puts the rootfs at /, so the
# container's users never walk these host paths), and pybuild uses no user namespace. 0711
# would not even be safe for snapshots/: chain IDs of public images are predictable, so
# "traverse only" still reaches their files. A future user-namespaced mode would need docker's
# final answer, 0710 with the mapped root's group, on the root and the dirs it mounts from.
PRIVATE_MODE: Final = 0o700


def known_entries() -> frozenset[str]:
    """Every name the store root may hold."""
    return frozenset((*STORE_FILES, *(d.name for d in STATE_DIRS)))


def make_private(root: Path) -> None:
    """Give the store root and each existing state directory mode 0700 (``PRIVATE_MODE``) when
    they have another: a store made by an older pybuild, or a directory made by its first
    user under the umask. One stat per directory, no walk; a store owned by someone else is
    left as it is (chmod is the owner's), and so is a state directory that is a symlink."""
    for path in (root, *(root / d.name for d in STATE_DIRS)):
        try:
            st = os.stat(path) if path == root else os.lstat(path)
            if stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) != PRIVATE_MODE:
                os.chmod(path, PRIVATE_MODE)
        except (FileNotFoundError, PermissionError):
            continue


def state_dir(root: Path, name: str) -> Path:
    if not any(d.name == name for d in STATE_DIRS):
        raise ValueError(f"{name!r} is not a store state directory (see builder.store.paths)")
    return root / name


def runtime_state_dir(root: Path, runtime: str) -> Path:
    """The ``--root`` of an OCI runtime (runc, crun) for the store at ``root``."""
    return state_dir(root, runtime)


def runtime_check_file(root: Path, runtime: str) -> Path:
    """Where the runtime check's answer (``Runc.check``) is kept for the store at ``root``."""
    return state_dir(root, BUILDINFO) / f"runtime-check-{runtime}.json"


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
    return root / INDEX


def blobs_dir(root: Path) -> Path:
    return root / BLOBS / "sha256"


def blob_path(root: Path, hex_digest: str) -> Path:
    """``blobs/sha256/<hex>``; ``hex_digest`` must already be a validated sha256 hex."""
    return blobs_dir(root) / hex_digest


def cache_record_path(root: Path, hex_key: str) -> Path:
    return root / CACHE / f"{hex_key}.json"


def lock_path(root: Path, name: str) -> Path:
    return root / LOCKS / name


def store_lock_path(root: Path) -> Path:
    return lock_path(root, "store.lock")


CONTAINER_IMAGE: Final = "image.json"  # in a container's directory: its image's descriptor


def containers_dir(root: Path) -> Path:
    """``containers/<id>/``: each container's record, writable layer, bundle and logs."""
    return root / CONTAINERS
